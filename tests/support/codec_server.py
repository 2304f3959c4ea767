"""`transfers codec-server` as a child process, for the tests that call it or point a UI at it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def key_env(**keys: bytes) -> dict[str, str]:
    """PAYLOAD_KEYS of `keys`, and PAYLOAD_KEY_ID the first of them."""
    pairs = ",".join(f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in keys.items())
    return {"PAYLOAD_KEYS": pairs, "PAYLOAD_KEY_ID": next(iter(keys))}


@contextmanager
def codec_server(env: dict[str, str], cwd: Path, *args: str) -> Iterator[str]:
    """Run `transfers codec-server --port 0 ARGS` until the block ends; its URL."""
    command = [sys.executable, "-m", "transfers.cli", "codec-server", "--port", "0", *args]
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()  # "codec server on http://127.0.0.1:PORT for ..."
        assert ready.startswith("codec server on "), ready
        yield ready.split()[3]
    finally:
        process.terminate()
        process.wait(timeout=10)
