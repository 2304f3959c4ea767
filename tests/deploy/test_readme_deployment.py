"""README's Deployment section against the files it describes: a version, a path, a secret or a
number changed in one place and not the other fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from workflows.search_attributes import REGISTRATION

ROOT = Path(__file__).parents[2]


def _section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme[
        readme.index("## Deployment\n") : readme.index("\n## ", readme.index("## Deployment\n") + 1)
    ]


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose


def test_every_image_is_named_with_its_version() -> None:
    images = {
        service["image"]
        for service in _compose()["services"].values()
        if not service["image"].startswith("transfers:")
    }
    assert {image for image in images if f"`{image}`" not in _section()} == set()
    base = re.search(r"^FROM (python:[\w.-]+)@", (ROOT / "Dockerfile").read_text(), re.M)
    assert base is not None
    assert f"`{base[1]}`" in _section()


def test_every_deploy_file_named_exists_and_every_script_is_named() -> None:
    named = set(re.findall(r"deploy/[\w./-]+\.sh", _section()))
    assert {path for path in named if not (ROOT / path).is_file()} == set()
    scripts = {str(path.relative_to(ROOT)) for path in (ROOT / "deploy").rglob("*.sh")}
    assert scripts - named == set()


def test_every_secret_and_its_settings_are_named() -> None:
    secrets = set(_compose()["secrets"])
    assert {name for name in secrets if f"`{name}`" not in _section()} == set()
    environment = {
        key
        for service in _compose()["services"].values()
        for key in service.get("environment", {})
        if key.endswith("_FILE") or key == "SECRETS_DIR"
    }
    assert {key for key in environment if key.removesuffix("_FILE") not in _section()} == set()


def test_the_history_shards_and_waits_are_those_of_the_files() -> None:
    services = _compose()["services"]
    shards = re.search(r":-(\d+)\}", services["temporal"]["environment"]["NUM_HISTORY_SHARDS"])
    assert shards is not None
    assert f"`NUM_HISTORY_SHARDS` is {shards[1]}" in _section()
    migrate_seconds = services["migrate"]["command"][2]
    assert f"retries\n`transfers db upgrade` for {migrate_seconds} s" in _section()
    wait = services["temporal-setup"]["environment"]["WAIT_SECONDS"]
    assert f"`WAIT_SECONDS` each ({wait})" in _section()
    assert "docker compose ps -a" in _section()


def test_the_rollback_recreates_the_workers_only() -> None:
    """Without --no-deps Compose recreates `migrate` (the workers depend on it) with the old
    image too: tests/deploy/test_migrate_after_rollback.py proves that would pass as well."""
    rollback = re.search(
        r"`TRANSFERS_IMAGE_TAG=<the\s+previous tag> (docker compose up [^`]+)`", _section()
    )
    assert rollback is not None
    assert rollback[1].split() == [
        "docker",
        "compose",
        "up",
        "-d",
        "--no-build",
        "--no-deps",
        "worker",
    ]


def test_the_upgrade_steps_run_the_role_script_as_the_earlier_superuser() -> None:
    """The earlier compose file made the shards with POSTGRES_USER=transfers (no `postgres`
    role); the role script connects as POSTGRES_USER, so the README's command sets it, and
    runs the script where the compose file mounts it."""
    mounted = _compose()["x-shard-roles"].split(":")[1]
    steps = " ".join(_section().split())
    assert f"docker compose exec -e POSTGRES_USER=transfers shard-0 sh {mounted}" in steps
    assert (
        "TEMPORAL_DB_PASSWORD=<from .env> SHARD_PASSWORD=<from .env> sh deploy/make-secrets.sh"
        in steps
    )
    assert "`TEMPORAL_HISTORY_SHARDS=4`" in steps


def test_the_search_attributes_are_counted_right() -> None:
    readme = (ROOT / "README.md").read_text()
    count = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight"][
        len(REGISTRATION)
    ]
    assert f"our {count} search attributes" in readme


def test_the_healthcheck_needs_are_documented() -> None:
    """The image's HEALTHCHECK asks 127.0.0.1 on HEALTH_PORT; Compose never acts on its
    result."""
    healthcheck = (ROOT / "Dockerfile").read_text().split("HEALTHCHECK", 1)[1]
    assert "127.0.0.1" in healthcheck
    assert "os.environ['HEALTH_PORT']" in healthcheck
    section = " ".join(_section().split())
    assert "It needs `HEALTH_PORT` set (not 0) and `HEALTH_HOST` to include loopback" in section
    assert "Compose does not restart an unhealthy container" in section
