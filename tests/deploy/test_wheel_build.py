"""The project's wheel, built as the image builds it (the pinned backend of [build-system]), carries
its license as an SPDX expression, and our pyproject draws no warning from the backend."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]
SOURCES = [
    "pyproject.toml",
    "README.md",
    "worker.py",
    "shards",
    "workflows",
    "activities",
    "transfers",
]
# A Python warning the backend prints ("...: SetuptoolsDeprecationWarning: ...") or a distutils
# "warning: ..." line; pip's own "WARNING:" lines (about its index settings) are not the build's.
BUILD_WARNING = re.compile(r"[A-Za-z]Warning: |^\s*warning: ")


def test_the_wheel_builds_without_a_warning_with_an_spdx_license(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(ROOT / name, source / name)
    # As a user's shell would run it: byte-compiling on (its absence is a warning of its own).
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    output = build.stdout + build.stderr
    assert build.returncode == 0, output[-3000:]
    assert [line for line in output.splitlines() if BUILD_WARNING.search(line)] == []
    [wheel] = wheels.glob("transfers-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        fields = archive.read(metadata).decode().splitlines()
    assert "License-Expression: Apache-2.0" in fields
    assert not any(field.startswith("License:") for field in fields)
