"""The dev server's Web UI shows every history, memo and amount, and answers any Host header (a
web page that rebinds its DNS name to 127.0.0.1 could read it): `transfers dev` binds it to
loopback, and the stacks nobody looks at (bench, chaos) run the server without it."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from transfers.devtools.bench.e2e_stack import embedded_stack
from transfers.devtools.chaos.progress import ChaosProgress
from transfers.devtools.chaos.run import ChaosOptions, ChaosRun
from transfers.devtools.devstack.processes import ChildProcess
from transfers.devtools.devstack.temporal_server import connect_when_ready, temporal_server
from transfers.devtools.embedded_pg import free_port

pytestmark = pytest.mark.security

START_TIMEOUT_S = 60.0


def _listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of each TCP socket the process listens on."""
    return [
        (connection.laddr.ip, connection.laddr.port)
        for connection in psutil.Process(pid).net_connections(kind="tcp")
        if connection.status == psutil.CONN_LISTEN
    ]


def _serves_web_ui(port: int) -> bool:
    """Whether GET / on the port answers with the UI's HTML page (gRPC, the HTTP API and the
    metrics endpoint answer otherwise, or not to HTTP/1.1 at all)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            kind = response.headers.get("Content-Type", "")
            return response.status == 200 and kind.startswith("text/html")
    except (urllib.error.URLError, OSError, ValueError):
        return False


async def _any_port_serves_web_ui(pid: int) -> bool:
    ports = {port for _, port in _listening(pid)}
    answers = await asyncio.gather(*(asyncio.to_thread(_serves_web_ui, p) for p in ports))
    return any(answers)


async def _running(tmp_path: Path, ui_port: int | None) -> tuple[ChildProcess, int]:
    port = free_port()
    server = temporal_server(tmp_path, port, ui_port, "default")
    server.start()
    await connect_when_ready(server, port, ui_port, "default", asyncio.Event(), START_TIMEOUT_S)
    return server, port


async def test_the_web_ui_listens_on_loopback_only(tmp_path: Path) -> None:
    ui_port = free_port()
    server, _ = await _running(tmp_path, ui_port)
    try:
        assert server.process is not None
        sockets = _listening(server.process.pid)
        assert [address for address, port in sockets if port == ui_port] == ["127.0.0.1"]
        # the check below tells the UI from the server's other ports
        assert await asyncio.to_thread(_serves_web_ui, ui_port)
    finally:
        server.stop(15)


async def test_a_headless_server_serves_no_web_ui_on_any_port(tmp_path: Path) -> None:
    server, port = await _running(tmp_path, None)
    try:
        assert server.process is not None
        ports = {port for _, port in _listening(server.process.pid)}
        assert port in ports  # the frontend serves
        assert port + 1000 not in ports  # where the UI would be by default
        assert not await _any_port_serves_web_ui(server.process.pid)
    finally:
        server.stop(15)


async def test_the_bench_stack_runs_temporal_headless() -> None:
    async with embedded_stack(shard_count=1) as stack:
        assert stack.info.ui_url is None
        assert stack.server_pid is not None
        assert not await _any_port_serves_web_ui(stack.server_pid)


def test_the_chaos_stack_runs_temporal_headless(tmp_path: Path) -> None:
    options = ChaosOptions(seed=1, duration_s=1.0, data_dir=tmp_path)
    run = ChaosRun(options, [], ChaosProgress(Console()))

    assert run.stack.options.ui_port is None
