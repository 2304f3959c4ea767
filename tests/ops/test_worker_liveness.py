"""Liveness apart from readiness, on a real `python worker.py`: while its only shard is down the
worker is not ready (/readyz and /healthz 503, naming the shard) but alive (/livez 200, and the
image's HEALTHCHECK passes), so a restart policy does not restart it for a slow database; once
the worker stops, /livez goes with it and the HEALTHCHECK fails."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shards.migrate import upgrade
from tests.deploy.test_dockerfile import image_healthcheck_command
from tests.ops.test_worker_observability import _get
from tests.ops.test_worker_process import WorkerProcess
from transfers.devtools.embedded_pg import EmbeddedPostgres, free_port
from transfers.settings import Settings


async def _answers(port: int) -> dict[str, tuple[int, str]]:
    paths = ["/livez", "/readyz", "/healthz"]
    return {path: await asyncio.to_thread(_get, port, path) for path in paths}


async def _until_readiness(port: int, status: int) -> None:
    for _ in range(150):  # 30 s
        if (await asyncio.to_thread(_get, port, "/readyz"))[0] == status:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"/readyz never answered {status}")


async def _image_healthcheck(port: int) -> int:
    """The Dockerfile's HEALTHCHECK command, run with this Python against the worker's port."""
    command = image_healthcheck_command()
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, *command[1:]],
        env={"HEALTH_PORT": str(port)},
        capture_output=True,
        check=False,
        timeout=10,
    )
    return result.returncode


@pytest.fixture
def own_shard(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A shard of this test's own, which it may stop without touching the session's shards."""
    server = EmbeddedPostgres(tmp_path / "shard", free_port(), durable=False)
    server.start()
    try:
        upgrade(server.dsn)
        yield server
    finally:
        server.remove()


async def test_a_worker_whose_shard_is_down_is_alive_but_not_ready(
    settings: Settings, own_shard: EmbeddedPostgres, tmp_path: Path
) -> None:
    port = free_port()
    worker = WorkerProcess(settings, tmp_path, SHARD_DSNS=own_shard.dsn, HEALTH_PORT=str(port))
    process = await worker.start_polling()
    try:
        await _until_readiness(port, 200)
        all_up = await _answers(port)
        healthcheck_all_up = await _image_healthcheck(port)

        own_shard.stop()
        await _until_readiness(port, 503)  # the probe is cached for a second
        shard_down = await _answers(port)
        healthcheck_shard_down = await _image_healthcheck(port)
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(process.wait(), timeout=30)
    healthcheck_stopped = await _image_healthcheck(port)

    assert {path: status for path, (status, _) in all_up.items()} == {
        "/livez": 200,
        "/readyz": 200,
        "/healthz": 200,
    }
    assert shard_down["/livez"] == (200, "ok\n")
    assert shard_down["/readyz"] == (503, "shard-0 does not answer\n")
    assert shard_down["/healthz"] == shard_down["/readyz"]
    assert (healthcheck_all_up, healthcheck_shard_down) == (0, 0)
    assert exit_code == 0, worker.log.read_text()
    assert healthcheck_stopped != 0
