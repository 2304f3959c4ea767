"""`make constraints`: pin, from PyPI, every package the image and the dev installs use.

- deploy/constraints.txt: the image's packages (runtime + otel), resolved for its Python on
  manylinux, each `name==version` with the sha256 of every wheel the image accepts; the Dockerfile
  installs exactly these with `pip install --require-hashes --no-deps`.
- deploy/build-constraints.txt: the build backend ([build-system].requires, `==` pins) and what it
  needs, hashed likewise; the Dockerfile builds the project's wheel with them.
- deploy/constraints-dev.txt: `name==version` of everything `make` puts in the venv (`.[dev]`, pip
  and the build backend), for the Python that runs this; `make` installs with `--constraint` (an
  editable install cannot check hashes).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

from pypi_wheels import ROOT, image_python, image_wheels, manylinux_platforms

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OWN_NAME = PROJECT["project"]["name"]
GENERATED = "# Written by `make constraints` (deploy/pin_constraints.py): do not edit by hand.\n"


def project_requirements(*extras: str) -> list[str]:
    """The project's dependencies and those of `extras`, its own (`transfers[otel]`) expanded."""
    wanted = list(PROJECT["project"]["dependencies"])
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in PROJECT["project"]["optional-dependencies"][extra]:
            own = re.fullmatch(rf"{OWN_NAME}\[([\w,\s-]+)\]", requirement)
            if own:
                pending.extend(name.strip() for name in own[1].split(","))
            else:
                wanted.append(requirement)
    return wanted


def resolve(requirements: list[str], *target: str) -> list[tuple[str, str]]:
    """(name, version) of everything pip would install for `requirements`, from PyPI only."""
    command = [
        *(sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed"),
        *("--quiet", "--report", "-", *target, *requirements),
    ]
    run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if run.returncode != 0:
        raise SystemExit(f"pip could not resolve {requirements}:\n{run.stderr}")
    installs = json.loads(run.stdout)["install"]
    return sorted(
        ((item["metadata"]["name"], item["metadata"]["version"]) for item in installs),
        key=lambda pin: pin[0].lower(),
    )


def image_target() -> list[str]:
    """pip's options that resolve for the image: its Python, manylinux x86_64, wheels only."""
    major, minor = image_python()
    platforms = [option for p in manylinux_platforms("x86_64") for option in ("--platform", p)]
    return ["--only-binary", ":all:", "--python-version", f"{major}.{minor}", *platforms]


def hashed(pins: list[tuple[str, str]]) -> str:
    lines = []
    for name, version in pins:
        digests = sorted(
            {
                wheel["digests"]["sha256"]
                for wheels in image_wheels(name, version).values()
                for wheel in wheels
            }
        )
        lines.append(
            " \\\n".join([f"{name}=={version}", *(f"    --hash=sha256:{d}" for d in digests)])
        )
    return "".join(f"{line}\n" for line in lines)


def write(file_name: str, header: str, body: str) -> None:
    (ROOT / "deploy" / file_name).write_text(GENERATED + header + body)
    print(f"wrote deploy/{file_name}")


def main() -> None:
    major, minor = image_python()
    where = f"CPython {major}.{minor} on manylinux x86_64 and aarch64 (the Dockerfile's base image)"
    write(
        "constraints.txt",
        f"# The image's packages (runtime + otel) for {where},\n# with the sha256 of their "
        "wheels: the Dockerfile installs exactly these (--require-hashes --no-deps).\n",
        hashed(resolve(project_requirements("otel"), *image_target())),
    )
    build_requires = PROJECT["build-system"]["requires"]
    write(
        "build-constraints.txt",
        f"# The build backend ([build-system].requires and its needs) for {where},\n# hashed: "
        "the Dockerfile builds the project's wheel with these, not in pip's isolated build.\n",
        hashed(resolve(build_requires, *image_target())),
    )
    dev = resolve([*project_requirements("dev"), *build_requires, "pip"])
    write(
        "constraints-dev.txt",
        f"# Everything `make` installs in the venv ('.[dev]', pip, the build backend), for Python "
        f"{sys.version_info[0]}.{sys.version_info[1]}:\n"
        "# `pip install --constraint` (editable installs cannot check hashes: see the README).\n",
        "".join(f"{name}=={version}\n" for name, version in dev),
    )


if __name__ == "__main__":
    main()
