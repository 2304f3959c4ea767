"""The image's target platform and the PyPI wheels that fit it: for `make constraints` (hashes)
and deploy/image_size.py (sizes). Reads the Python version from the Dockerfile's base image."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).parents[1]
PYPI_PROJECT = "https://pypi.org/pypi/{name}/json"
# The base image is Debian bookworm (python:*-slim-bookworm): glibc 2.36, manylinux_2_36 and older.
GLIBC_MINOR = 36
LEGACY_MANYLINUX = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
# The image's own platform first: sizes are reported for it; arm64 hashes let a Mac build it too.
ARCHITECTURES = ("x86_64", "aarch64")


def image_python() -> tuple[int, int]:
    """The base image's Python (major, minor), from the Dockerfile's first FROM line."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^FROM python:(\d+)\.(\d+)", dockerfile, re.MULTILINE)
    if match is None:
        raise SystemExit("Dockerfile: no `FROM python:X.Y...` line to take the image's Python from")
    return int(match[1]), int(match[2])


def manylinux_platforms(architecture: str) -> list[str]:
    """Every manylinux tag a glibc-2.36 system of `architecture` accepts, newest first
    (pip's --platform does not widen manylinux_2_36 to the older ones by itself)."""
    current = [f"manylinux_2_{minor}_{architecture}" for minor in range(GLIBC_MINOR, 4, -1)]
    legacy = [f"{alias}_{architecture}" for alias in LEGACY_MANYLINUX]
    if architecture == "aarch64":  # manylinux2014 was the first with aarch64
        legacy = legacy[:1]
    return current + legacy


def image_tags(architecture: str) -> list[Tag]:
    """The wheel tags the image's pip accepts on `architecture`, in pip's order of preference."""
    python = image_python()
    platforms = manylinux_platforms(architecture)
    interpreter = f"cp{python[0]}{python[1]}"
    return [
        *cpython_tags(python, platforms=platforms),
        *compatible_tags(python, interpreter, platforms),
    ]


@cache
def _releases(name: str) -> dict[str, list[dict[str, Any]]]:
    url = PYPI_PROJECT.format(name=canonicalize_name(name))
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (a fixed https URL)
        releases: dict[str, list[dict[str, Any]]] = json.load(response)["releases"]
    for files in releases.values():
        for file in files:  # a mirror may give them relative to the JSON's address
            file["url"] = urllib.parse.urljoin(url, file["url"])
    return releases


def _ranked(files: Iterable[dict[str, Any]], tags: list[Tag]) -> list[tuple[int, dict[str, Any]]]:
    """The wheels among `files` (PyPI's JSON entries) fitting `tags`, with their best tag's rank."""
    rank = {tag: position for position, tag in enumerate(tags)}
    ranked = [
        (min(rank.get(tag, len(rank)) for tag in parse_wheel_filename(file["filename"])[3]), file)
        for file in files
        if file["packagetype"] == "bdist_wheel"
    ]
    return [(position, file) for position, file in ranked if position < len(rank)]


def image_wheels(name: str, version: str) -> dict[str, list[dict[str, Any]]]:
    """For each architecture of the image, the wheels of `name==version` its pip accepts, the one it
    installs first. Exits if PyPI has none for one of them (the image installs wheels only)."""
    files = _releases(name).get(version, [])
    wheels = {
        architecture: [
            file for _, file in sorted(_ranked(files, image_tags(architecture)), key=_rank)
        ]
        for architecture in ARCHITECTURES
    }
    missing = [architecture for architecture, fitting in wheels.items() if not fitting]
    if missing:
        raise SystemExit(f"PyPI has no wheel of {name}=={version} for the image on {missing}")
    return wheels


def _rank(pair: tuple[int, dict[str, Any]]) -> int:
    return pair[0]
