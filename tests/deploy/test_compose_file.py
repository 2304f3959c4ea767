"""docker-compose.yml checked without a Docker engine: the Compose specification's JSON schema
(vendored by check-jsonschema), then the rules the deployment relies on."""

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
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|API_KEY", re.IGNORECASE)
REFERENCE = re.compile(r"^\$\{[A-Z0-9_]+(:?[?-][^}]*)?\}$")
DSN_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]+)@")
PINNED_TAG = re.compile(r"^[\w./-]+:\d[\w.-]*$")  # name:1.2.3..., never `latest` nor bare


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


def _check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    return subprocess.run([*command, str(path)], capture_output=True, text=True, check=False)


def _one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


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
    unchecked = [
        name
        for name, service in _services().items()
        if not _one_shot(service) and not service.get("healthcheck", {}).get("test")
    ]
    assert unchecked == []


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


def test_every_image_is_pinned_to_a_version() -> None:
    images = {name: service["image"] for name, service in _services().items()}
    unpinned = {name: image for name, image in images.items() if not PINNED_TAG.match(image)}
    assert unpinned == {}


def test_passwords_come_from_the_environment() -> None:
    literal = []
    for name, service in _services().items():
        for key, value in _environment(service).items():
            if SECRET_NAME.search(key) and not REFERENCE.match(value):
                literal.append(f"{name}.{key}")
            literal += [
                f"{name}.{key} (DSN)"
                for password in DSN_PASSWORD.findall(value)
                if not REFERENCE.match(password)
            ]
    assert literal == []
    required = re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text())
    assert set(required) == {"SHARD_PASSWORD", "TEMPORAL_DB_PASSWORD"}


def test_the_worker_scales() -> None:
    worker = _services()["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker  # a fixed host port would clash at --scale worker=3
    assert set(worker["expose"]) == {"9464", "8081"}
    assert "8081/healthz" in " ".join(worker["healthcheck"]["test"])


def test_the_worker_uses_every_shard_in_order() -> None:
    services = _services()
    shards = sorted(name for name in services if name.startswith("shard-"))
    dsns = _environment(services["worker"])["SHARD_DSNS"].split(",")
    assert shards == ["shard-0", "shard-1", "shard-2"]
    assert [dsn.strip().split("@")[1].split(":")[0] for dsn in dsns] == shards
    assert (
        _environment(services["migrate"])["SHARD_DSNS"]
        == _environment(services["worker"])["SHARD_DSNS"]
    )


def test_the_search_attributes_are_those_the_workflows_set() -> None:
    words = _environment(_services()["temporal-setup"])["SEARCH_ATTRIBUTES"].split()
    assert dict(word.split("=") for word in words) == REGISTRATION


def _docker_compose() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    return [docker, "compose"] if probe.returncode == 0 else None


@pytest.mark.skipif(_docker_compose() is None, reason="the docker compose plugin is not installed")
def test_docker_compose_accepts_the_file() -> None:
    compose = _docker_compose() or []
    secrets = {"SHARD_PASSWORD": "example", "TEMPORAL_DB_PASSWORD": "example"}
    result = subprocess.run(
        [*compose, "--file", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **secrets},
        check=False,
    )
    assert result.returncode == 0, result.stderr
