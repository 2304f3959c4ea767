"""Settings, read once at the edge (environment, `.env`, files in `SECRETS_DIR`, or a dev stack's
`stack.json`)."""

from __future__ import annotations

import json
import os
import re
import stat
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import (
    BaseModel,
    ConfigDict,
    DirectoryPath,
    Field,
    FilePath,
    IPvAnyAddress,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from shards.errors import StackFileError
from shards.lock_strategy import LockStrategy
from transfers.payload_keys import parse_payload_keys
from transfers.private_files import write_private
from transfers.stack_location import DEFAULT_DATA_DIR

if TYPE_CHECKING:
    from shards.shard import PoolSettings

STACK_FILE = "stack.json"


class Settings(BaseSettings):
    """Everything a worker or a client needs; environment names are the field names in capitals."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    transfers_task_queue: str = "transfers"
    shard_dsns: str = ""
    lock_strategy: LockStrategy = LockStrategy.PESSIMISTIC
    ui_url: str = "http://localhost:8233"
    max_concurrent_activities: int = Field(default=200, ge=1)
    max_concurrent_workflow_tasks: int = Field(default=200, ge=1)
    shard_pool_size: int = Field(default=10, ge=1)
    startup_timeout_s: float = Field(default=30.0, gt=0)
    # False runs workflows without the SDK's sandbox: less CPU a transfer, but nothing stops
    # non-deterministic code in a workflow at run time (the replay tests still do, in CI).
    workflow_sandbox: bool = True
    # Production Temporal: TLS on when set (None: on only with an API key), a private CA,
    # mTLS client certificate and key, or Temporal Cloud's API key (never logged).
    temporal_tls: bool | None = None
    temporal_tls_ca: FilePath | None = None
    temporal_tls_cert: FilePath | None = None
    temporal_tls_key: FilePath | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None
    # Worker observability; port 0 turns the endpoint off. Loopback unless told otherwise: in a
    # container the probe and the scraper come from outside, so the image sets 0.0.0.0.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: IPvAnyAddress = IPv4Address("127.0.0.1")
    health_port: int = Field(default=0, ge=0, le=65535)
    health_host: IPvAnyAddress = IPv4Address("127.0.0.1")
    otel_tracing: bool = False
    # Payload encryption (transfers.payload_codec): PAYLOAD_KEYS `KEY_ID:BASE64,...` (never
    # logged) decrypt; PAYLOAD_KEY_ID names the one that encrypts. Both or neither.
    payload_keys: SecretStr | None = None
    payload_key_id: str | None = None
    # SECRETS_DIR (from the environment): a folder of files named like the settings in lower
    # case (`shard_dsns`, `temporal_api_key`, `payload_keys` ...), each holding that setting's
    # value: Compose or Kubernetes secrets, which `docker inspect` does not show. The
    # environment and `.env` win over a file.
    secrets_dir: DirectoryPath | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        folder = os.environ.get("SECRETS_DIR", "")
        if folder and Path(folder).is_dir():  # else the field's validation names the problem
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=folder)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator("shard_dsns")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _certificate_with_key(self) -> Settings:
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            raise ValueError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together")
        return self

    @model_validator(mode="after")
    def _api_key_never_in_clear(self) -> Settings:
        clear = self.temporal_api_key is not None and self.temporal_tls is False
        if clear and not is_loopback(self.temporal_address):
            raise ValueError(
                "TEMPORAL_API_KEY with TEMPORAL_TLS=false would send the key unencrypted to "
                f"{self.temporal_address}: keep TLS on (the default with an API key)"
            )
        return self

    @field_validator("payload_keys", "payload_key_id", "secrets_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _payload_key_known(self) -> Settings:
        if self.payload_keys is None and self.payload_key_id is None:
            return self
        if self.payload_keys is None or self.payload_key_id is None:
            raise ValueError("PAYLOAD_KEYS and PAYLOAD_KEY_ID must be set together")
        if self.payload_key_id not in parse_payload_keys(self.payload_keys.get_secret_value()):
            raise ValueError(f"PAYLOAD_KEY_ID {self.payload_key_id} is not among the PAYLOAD_KEYS")
        return self

    # The shard modules are imported when used: they bring SQLAlchemy and psycopg, which a
    # Temporal-only command (and `transfers --help`) does without.
    def dsn_list(self) -> list[str]:
        from shards.router import parse_dsns

        return parse_dsns(self.shard_dsns)

    def pool(self) -> PoolSettings:
        from shards.shard import PoolSettings

        return PoolSettings(pool_size=self.shard_pool_size)


def settings_problem(error: ValidationError) -> str:
    """The first problem of unusable settings in one line, by environment name; no value is
    repeated (it may be a secret)."""
    problem = error.errors()[0]
    name = str(problem["loc"][0]).upper() if problem["loc"] else "settings"
    return f"{name}: {problem['msg']}"


class StackInfo(BaseModel):
    """`<data-dir>/stack.json`, written by `transfers dev` once everything is up."""

    model_config = ConfigDict(extra="ignore")

    temporal_address: str
    namespace: str
    task_queue: str
    ui_url: str | None = None  # None: the server runs without its Web UI
    shard_dsns: list[str] = Field(min_length=1)


# The servers a dev stack names, in exactly the forms `transfers dev` writes: parsers differ
# on anything else (libpq reads `#?host=` and `host1,host2` in a URL; the SDK splits
# `a:1\\@localhost:2` elsewhere than urllib), so a looser check could be led off this machine.
_LOOPBACK = r"(?:127\.0\.0\.1|localhost|\[::1\])"
_LOOPBACK_ADDRESS = re.compile(rf"{_LOOPBACK}:[0-9]{{1,5}}")
_LOOPBACK_UI = re.compile(rf"http://{_LOOPBACK}:[0-9]{{1,5}}")
_LOOPBACK_SHARD = re.compile(
    rf"postgresql://postgres:[A-Za-z0-9_.~%-]+@{_LOOPBACK}:[0-9]{{1,5}}/postgres"
    r"\?require_auth=scram-sha-256"
)


def is_loopback(address: str) -> bool:
    """Whether a Temporal `host:port` address is this machine's, and nothing else."""
    return _LOOPBACK_ADDRESS.fullmatch(address) is not None


def _names_this_machine_only(stack: StackInfo) -> bool:
    return (
        is_loopback(stack.temporal_address)
        and (stack.ui_url is None or _LOOPBACK_UI.fullmatch(stack.ui_url) is not None)
        and all(_LOOPBACK_SHARD.fullmatch(dsn) for dsn in stack.shard_dsns)
    )


def read_stack(data_dir: Path) -> StackInfo:
    """The stack file, if we may trust it: a regular file of ours, mode 0600 as `transfers dev`
    writes it (a git checkout cannot), naming loopback servers only (a shard it named elsewhere
    would receive libpq's password from PGPASSWORD or ~/.pgpass)."""
    path = data_dir / STACK_FILE
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise StackFileError(f"{path} not found: is `transfers dev` running?") from None
    except OSError as error:
        raise StackFileError(f"{path} cannot be read: {error.strerror}") from None
    with os.fdopen(descriptor) as file:
        info = os.fstat(file.fileno())
        if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) != 0o600:
            raise StackFileError(
                f"{path} is not used: `transfers dev` writes it yours, mode 0600 (this one is not)"
            )
        text = file.read()
    try:
        stack = StackInfo.model_validate(json.loads(text))
    except (ValueError, ValidationError) as error:
        first = str(error).splitlines()[0]
        raise StackFileError(f"{path} is not a valid stack file: {first}") from None
    if not _names_this_machine_only(stack):
        raise StackFileError(f"{path} is not used: it names a server that is not on this machine")
    return stack


def write_stack(data_dir: Path, stack: StackInfo) -> Path:
    path = data_dir / STACK_FILE
    write_private(path, stack.model_dump_json(indent=2) + "\n")  # its DSNs hold passwords
    return path


def load_settings(stack_dir: Path | None = None) -> Settings:
    """Explicit `--stack DIR` wins; else the environment; else a running dev stack's file,
    but only where no `TEMPORAL_*` or `SHARD_DSNS` setting names another cluster. A stack file
    never meets an API key or TLS settings: they are meant for a real cluster."""
    settings = Settings()
    credentials = sorted(
        name.upper()
        for name in settings.model_fields_set
        if name == "temporal_api_key" or name.startswith("temporal_tls")
    )
    if stack_dir is None:
        cluster = any(
            name == "shard_dsns" or name.startswith("temporal_")
            for name in settings.model_fields_set
        )
        if cluster or not (DEFAULT_DATA_DIR / STACK_FILE).exists():
            return settings
        stack_dir = DEFAULT_DATA_DIR
    if credentials:
        raise StackFileError(
            f"{stack_dir / STACK_FILE} is a local dev stack's: it is not used with "
            f"{', '.join(credentials)} set (unset them, or give TEMPORAL_ADDRESS and SHARD_DSNS)"
        )
    stack = read_stack(stack_dir)
    return settings.model_copy(
        update={
            "temporal_address": stack.temporal_address,
            "temporal_namespace": stack.namespace,
            "transfers_task_queue": stack.task_queue,
            "ui_url": stack.ui_url or settings.ui_url,
            "shard_dsns": ",".join(stack.shard_dsns),
        }
    )
