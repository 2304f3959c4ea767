"""The Dockerfile read as text, without a Docker engine: multi-stage, pinned, unprivileged, and
every file it copies let through by .dockerignore; the image's package pins cover pyproject."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).parents[2]
PINNED_BASE = re.compile(r"^python:\d+\.\d+\.\d+-slim(-\w+)?$")
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


def test_packages_are_installed_under_the_pinned_constraints() -> None:
    [install] = [run for run in _stages()[0].arguments("RUN") if "pip install" in run]
    assert "--constraint deploy/constraints.txt" in install
    lines = (ROOT / "deploy" / "constraints.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert all(version for version in pins.values())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["otel"]]
    names = {_normalized(re.split(r"[\[<>=;, ]", requirement)[0]) for requirement in wanted}
    assert names <= {_normalized(name) for name in pins}


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
