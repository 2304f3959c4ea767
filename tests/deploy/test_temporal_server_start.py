"""The Temporal server's start in docker-compose.yml: deploy/temporal/start-server.sh on server
images with and without /etc/temporal/entrypoint.sh (gone from 1.30), and the dynamic-config
file that Temporal's own compose files mount."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]
START = ROOT / "deploy" / "temporal" / "start-server.sh"
LEGACY_ENTRYPOINT = Path("/etc/temporal/entrypoint.sh")


def _temporal() -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][
        "temporal"
    ]
    return service


def test_the_dynamic_config_file_is_ours_and_mounted() -> None:
    path = Path(_temporal()["environment"]["DYNAMIC_CONFIG_FILE_PATH"])
    mounts = {
        Path(target): ROOT / source
        for source, target, *_ in (volume.split(":") for volume in _temporal()["volumes"])
    }
    assert path.is_absolute()
    host_folder = mounts[path.parent]
    # a map of setting -> constrained values; empty: the server's defaults
    assert yaml.safe_load((host_folder / path.name).read_text()) == {}


def test_the_start_falls_back_to_the_images_own_entrypoint(tmp_path: Path) -> None:
    """A 1.30+ image: no entrypoint.sh, `temporal-server start` with the password exported."""
    assert not LEGACY_ENTRYPOINT.exists()  # as in those images
    server = tmp_path / "bin" / "temporal-server"
    server.parent.mkdir()
    server.write_text('#!/bin/sh\necho "args: $*; password: $POSTGRES_PWD"\n')
    server.chmod(0o755)
    password = tmp_path / "temporal_db_password"
    password.write_text("s3cret")
    result = subprocess.run(
        ["sh", str(START)],
        env={"PATH": f"{server.parent}:/usr/bin:/bin", "POSTGRES_PWD_FILE": str(password)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "args: start; password: s3cret\n"


def test_the_start_prefers_the_legacy_entrypoint_where_there_is_one() -> None:
    script = START.read_text()
    assert f"[ -x {LEGACY_ENTRYPOINT} ]" in script
    assert script.index(f"exec {LEGACY_ENTRYPOINT}") < script.index("exec temporal-server start")
    assert _temporal()["entrypoint"] == ["sh", "/deploy/start-server.sh"]
