"""`transfers dev` as a user starts it, in a subprocess on free ports, for end-to-end tests."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from transfers.devtools.embedded_pg import free_port
from transfers.settings import StackInfo, read_stack

START_TIMEOUT_S = 120


@contextlib.contextmanager
def dev_stack(data_dir: Path, shards: int) -> Iterator[StackInfo]:
    """The stack once its stack.json is written; stopped with SIGTERM (or killed) afterwards."""
    log = data_dir.parent / f"{data_dir.name}.log"
    ports = ("--temporal-port", str(free_port()), "--ui-port", str(free_port()))
    command = [sys.executable, "-m", "transfers.cli", "dev", "--data-dir", str(data_dir)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--shards", str(shards), *ports], stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (data_dir / "stack.json").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"transfers dev did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield read_stack(data_dir)
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
