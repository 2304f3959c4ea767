"""docker-compose.yml checked without a Docker engine: the Compose specification's JSON schema
(vendored by check-jsonschema), then the rules the deployment relies on (issue 14: start-up that
cannot race, bounded waits, least privilege, secrets as files, an init for the worker)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.search_attributes import REGISTRATION

ROOT = Path(__file__).parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SECRET_NAME = re.compile(r"PASSWORD|PWD|TOKEN|API_KEY|DSN|SECRET(?!S_DIR$)", re.IGNORECASE)
DSN_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]+)@")
PINNED_TAG = re.compile(r"^[\w./-]+:\d+\.\d+[\w.-]*$")  # name:17.12, name:1.32.0; never `latest`
OUR_IMAGE = "transfers:${TRANSFERS_IMAGE_TAG:?"


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


def _check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    return subprocess.run([*command, str(path)], capture_output=True, text=True, check=False)


def _one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def _built_here(service: dict[str, Any]) -> bool:
    return "build" in service


def _dockerfile_healthcheck() -> str:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return " ".join(line for line in text.splitlines() if line.startswith("HEALTHCHECK"))


def _mounted_secrets(service: dict[str, Any]) -> dict[str, str]:
    """Where each secret the service mounts appears: /run/secrets/<target>."""
    mounted = {}
    for secret in service.get("secrets", []):
        source, target = (
            (secret, secret)
            if isinstance(secret, str)
            else (
                secret["source"],
                secret.get("target", secret["source"]),
            )
        )
        mounted[source] = f"/run/secrets/{target}"
    return mounted


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def test_compose_file_follows_the_compose_specification() -> None:
    result = _check_schema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_misspelt_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("healthcheck:", "healtcheck:", 1))
    result = _check_schema(broken)
    assert result.returncode != 0
    assert "healtcheck" in result.stdout + result.stderr


def test_every_long_running_service_is_health_checked() -> None:
    """In the compose file, or, for the image built here, by its HEALTHCHECK."""
    unchecked = [
        name
        for name, service in _services().items()
        if not _one_shot(service)
        and not service.get("healthcheck", {}).get("test")
        and not (_built_here(service) and _dockerfile_healthcheck())
    ]
    assert unchecked == []


def test_postgres_health_checks_go_over_tcp() -> None:
    """pg_isready over the socket answers while the first-start server refuses TCP."""
    checks = {
        name: " ".join(service["healthcheck"]["test"][1:])
        for name, service in _services().items()
        if service["image"].startswith("postgres:")
    }
    assert set(checks) == {"temporal-db", "shard-0", "shard-1", "shard-2"}
    assert {name: check for name, check in checks.items() if "-h 127.0.0.1" not in check} == {}


def test_the_server_health_check_needs_no_cli_and_nothing_waits_on_it() -> None:
    """The server image ships temporal-server and busybox; dependents wait for temporal-setup,
    whose bounded wait asks the cluster's health with the admin-tools CLI."""
    services = _services()
    check = services["temporal"]["healthcheck"]["test"]
    assert check[:2] == ["CMD", "nc"]
    assert not {"temporal", "tctl", "curl", "bash"} & set(check)
    waits_for_health = [
        name
        for name, service in services.items()
        if service.get("depends_on", {}).get("temporal", {}).get("condition") == "service_healthy"
    ]
    assert waits_for_health == []
    assert services["worker"]["depends_on"]["temporal-setup"]["condition"] == (
        "service_completed_successfully"
    )


def test_history_shards_are_set_for_production() -> None:
    value = _environment(_services()["temporal"])["NUM_HISTORY_SHARDS"]
    default = int(re.fullmatch(r"\$\{TEMPORAL_HISTORY_SHARDS:-(\d+)\}", value)[1])  # type: ignore[index]
    assert default >= 512
    assert default & (default - 1) == 0  # a power of two: clusters can then replicate


def test_one_shot_jobs_gate_the_services_that_need_them() -> None:
    services = _services()
    awaited = {
        dependency
        for service in services.values()
        for dependency, condition in service.get("depends_on", {}).items()
        if condition.get("condition") == "service_completed_successfully"
    }
    one_shots = {name for name, service in services.items() if _one_shot(service)}
    assert one_shots == awaited == {"temporal-schema", "temporal-setup", "migrate"}


def test_every_wait_is_bounded() -> None:
    """Loops live in deploy/retry.sh alone, which gives up after its SECONDS; the set-up jobs
    and the migrations wait through it."""
    scripts = sorted((ROOT / "deploy").rglob("*.sh"))
    looping = [
        script.name
        for script in scripts
        if re.search(r"^\s*(until|while)\b", script.read_text(), re.M)
    ]
    assert looping == ["retry.sh"]
    for job in ("temporal/setup-schema.sh", "temporal/setup-namespace.sh"):
        assert "retry.sh" in (ROOT / "deploy" / job).read_text()
    assert _services()["migrate"]["command"][:3] == ["sh", "/deploy/retry.sh", "120"]


def test_every_image_is_pinned_to_a_version() -> None:
    images = {name: service["image"] for name, service in _services().items()}
    ours = {name for name, service in _services().items() if _built_here(service)}
    assert ours == {"migrate", "worker"}
    assert {images[name] for name in ours} == {
        OUR_IMAGE + "export TRANSFERS_IMAGE_TAG=$(sh deploy/image-tag.sh)}"
    }
    unpinned = {
        name: image
        for name, image in images.items()
        if name not in ours and not PINNED_TAG.match(image)
    }
    assert unpinned == {}


def test_temporal_server_and_admin_tools_are_one_release() -> None:
    tags = {
        service["image"].split(":")[1]
        for service in _services().values()
        if service["image"].startswith(("temporalio/server:", "temporalio/admin-tools:"))
    }
    assert len(tags) == 1


def test_no_secret_is_an_environment_value() -> None:
    """Passwords and DSNs are Compose secrets, files under /run/secrets that `docker inspect`
    does not show: a secret-looking variable is a *_FILE naming a secret the service mounts."""
    services = _services()
    problems = []
    for name, service in services.items():
        mounted = _mounted_secrets(service)
        for key, value in _environment(service).items():
            if SECRET_NAME.search(key) and not (
                key.endswith("_FILE") and value in mounted.values()
            ):
                problems.append(f"{name}.{key}")
            problems += [f"{name}.{key} (DSN)" for _ in DSN_PASSWORD.findall(value)]
    assert problems == []
    assert "PASSWORD}" not in COMPOSE_FILE.read_text()
    files = yaml.safe_load(COMPOSE_FILE.read_text())["secrets"]
    assert {secret["file"].rsplit("/", 1)[0] for secret in files.values()} == {"./secrets"}
    assert "secrets/" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_shards_make_least_privilege_roles_on_first_start() -> None:
    for name in ("shard-0", "shard-1", "shard-2"):
        shard = _services()[name]
        assert (
            "./deploy/postgres/init-roles.sh:/docker-entrypoint-initdb.d/10-roles.sh:ro"
            in shard["volumes"]
        )
        assert {"ledger_owner_password", "ledger_worker_password"} <= set(_mounted_secrets(shard))


def test_the_worker_uses_the_worker_role_and_migrations_the_owner_role() -> None:
    """Each gets its DSN list (deploy/make-secrets.sh: tests/deploy/test_compose_secrets.py) as the
    file shard_dsns of SECRETS_DIR; neither has SHARD_DSNS in its environment."""
    services = _services()
    for job, dsns in (("worker", "shard_dsns_worker"), ("migrate", "shard_dsns_owner")):
        service = services[job]
        assert _mounted_secrets(service) == {dsns: "/run/secrets/shard_dsns"}
        assert _environment(service)["SECRETS_DIR"] == "/run/secrets"
        assert "SHARD_DSNS" not in _environment(service)


def test_the_worker_runs_under_an_init_and_scales() -> None:
    worker = _services()["worker"]
    assert worker["init"] is True  # PID 1 reaps and forwards signals; Python is not PID 1
    assert "container_name" not in worker
    assert "ports" not in worker  # a fixed host port would clash at --scale worker=3
    assert set(worker["expose"]) == {"9464", "8081"}


def test_the_worker_serves_metrics_and_health_beyond_its_container() -> None:
    """The worker's own default is loopback, which no other container could reach."""
    environment = _environment(_services()["worker"])
    every_interface = "0.0.0.0"  # noqa: S104 - what the test is about
    assert environment["METRICS_HOST"] == environment["HEALTH_HOST"] == every_interface


def test_the_search_attributes_are_those_the_workflows_set() -> None:
    words = _environment(_services()["temporal-setup"])["SEARCH_ATTRIBUTES"].split()
    assert dict(word.split("=") for word in words) == REGISTRATION


def test_shell_scripts_keep_lf_line_endings() -> None:
    """.gitattributes: a checkout on Windows must not give the containers' sh a CRLF script."""
    scripts = [str(path.relative_to(ROOT)) for path in (ROOT / "deploy").rglob("*.sh")]
    result = subprocess.run(
        ["git", "check-attr", "eol", "--", *scripts],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines() == [f"{script}: eol: lf" for script in scripts]
    assert all(b"\r\n" not in (ROOT / script).read_bytes() for script in scripts)


def _docker_compose() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    return [docker, "compose"] if probe.returncode == 0 else None


@pytest.mark.skipif(_docker_compose() is None, reason="the docker compose plugin is not installed")
def test_docker_compose_accepts_the_file() -> None:
    compose = _docker_compose() or []
    result = subprocess.run(
        [*compose, "--file", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TRANSFERS_IMAGE_TAG": "0.1.0-test"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
