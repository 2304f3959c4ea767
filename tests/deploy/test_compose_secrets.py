"""The compose stack's secrets: deploy/make-secrets.sh's files, and our settings read from a
SECRETS_DIR of such files (a Compose secret is a file under /run/secrets)."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError

from transfers.settings import Settings, settings_problem

ROOT = Path(__file__).parents[2]
MAKE_SECRETS = ROOT / "deploy" / "make-secrets.sh"
PASSWORDS = ["temporal_db", "shard_superuser", "ledger_owner", "ledger_worker"]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting from this process's environment or a `.env` in the current folder."""
    for name in ("SHARD_DSNS", "SECRETS_DIR", "TEMPORAL_API_KEY", "TEMPORAL_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _make_secrets(
    folder: Path, environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(MAKE_SECRETS), str(folder)],
        env={"PATH": "/usr/bin:/bin", **(environment or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_secrets_writes_passwords_and_the_dsns_made_of_them(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    assert _make_secrets(folder).returncode == 0
    passwords = {name: (folder / f"{name}_password").read_text() for name in PASSWORDS}
    assert all(len(value) == 32 and value.isalnum() for value in passwords.values())
    assert len(set(passwords.values())) == len(PASSWORDS)
    for role in ("owner", "worker"):
        dsns = [urlsplit(dsn) for dsn in (folder / f"shard_dsns_{role}").read_text().split(",")]
        # in routing order, as the role that runs the step, never the superuser
        assert [dsn.hostname for dsn in dsns] == ["shard-0", "shard-1", "shard-2"]
        assert {(dsn.username, dsn.password) for dsn in dsns} == {
            (f"ledger_{role}", passwords[f"ledger_{role}"])
        }
        # libpq hands the password to a server that proves it knows it, nothing weaker
        assert {dsn.query for dsn in dsns} == {"require_auth=scram-sha-256"}
    # nobody else on the host gets into the folder; the containers' users read its files
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()} == {0o644}


def test_make_secrets_keeps_the_passwords_and_remakes_the_dsns(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    _make_secrets(folder)
    before = {path.name: path.read_text() for path in folder.iterdir()}
    (folder / "ledger_worker_password").unlink()
    assert _make_secrets(folder).returncode == 0
    after = {path.name: path.read_text() for path in folder.iterdir()}
    assert set(after) == set(before)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"ledger_worker_password", "shard_dsns_worker"}
    assert f":{after['ledger_worker_password']}@" in after["shard_dsns_worker"]


def test_make_secrets_takes_the_passwords_an_earlier_stack_has(tmp_path: Path) -> None:
    """The earlier compose file's servers keep the passwords of its .env: POSTGRES_PASSWORD_FILE
    applies on a first start only."""
    folder = tmp_path / "secrets"
    earlier = {"TEMPORAL_DB_PASSWORD": "t3mp-from-.env", "SHARD_PASSWORD": "sh4rd from .env"}
    assert _make_secrets(folder, earlier).returncode == 0
    assert (folder / "temporal_db_password").read_text() == "t3mp-from-.env"
    assert (folder / "shard_superuser_password").read_text() == "sh4rd from .env"
    assert len((folder / "ledger_owner_password").read_text()) == 32

    again = _make_secrets(folder, {**earlier, "SHARD_PASSWORD": "another"})
    assert again.returncode == 0
    assert (folder / "shard_superuser_password").read_text() == "sh4rd from .env"
    assert f"kept {folder}/shard_superuser_password, which differs" in again.stderr


def test_settings_read_the_worker_dsns_from_the_secrets_dir(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in the worker's container: shard_dsns_worker mounted as /run/secrets/shard_dsns."""
    made, mounted = clean_environment / "made", clean_environment / "run-secrets"
    _make_secrets(made)
    mounted.mkdir()
    (mounted / "shard_dsns").write_text((made / "shard_dsns_worker").read_text())
    (mounted / "temporal_api_key").write_text("key-from-a-file\n")
    monkeypatch.setenv("SECRETS_DIR", str(mounted))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")  # TLS is on with a key

    settings = Settings()

    assert [urlsplit(dsn).username for dsn in settings.dsn_list()] == ["ledger_worker"] * 3
    assert settings.temporal_api_key is not None
    assert settings.temporal_api_key.get_secret_value() == "key-from-a-file"


def test_the_environment_wins_over_a_secret_file(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_environment / "shard_dsns").write_text("postgresql://from-file@db/ledger")
    monkeypatch.setenv("SECRETS_DIR", str(clean_environment))
    monkeypatch.setenv("SHARD_DSNS", "postgresql://from-env@db/ledger")
    assert Settings().shard_dsns == "postgresql://from-env@db/ledger"


def test_a_secrets_dir_that_is_no_folder_is_named(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETS_DIR", str(clean_environment / "missing"))
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert settings_problem(raised.value).startswith("SECRETS_DIR: ")


def test_without_secrets_dir_no_file_is_read(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_environment / "shard_dsns").write_text("postgresql://from-file@db/ledger")
    assert Settings().shard_dsns == ""
