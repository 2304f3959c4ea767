"""Where `transfers bench e2e` runs: a fresh embedded stack, or the one the settings name."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from transfers.devtools.bench.e2e_run import BenchStack
from transfers.devtools.devstack.stack import DevOptions, DevStack
from transfers.devtools.embedded_pg import free_port
from transfers.settings import Settings, StackInfo

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


@contextlib.asynccontextmanager
async def embedded_stack(shard_count: int = 3) -> AsyncIterator[BenchStack]:
    """Temporal dev server and durable shards in a temporary folder, removed after a run that
    succeeded (kept, with the workers' logs, after one that failed)."""
    data_dir = Path(tempfile.mkdtemp(prefix="transfers-bench-e2e-"))
    stack = DevStack(
        DevOptions(
            data_dir=data_dir,
            shard_count=shard_count,
            temporal_port=free_port(),
            ui_port=None,
            worker=False,
        )
    )
    try:
        info = await stack.start(asyncio.Event())
        temporal = stack.temporal.process if stack.temporal is not None else None
        yield BenchStack(
            info=info,
            settings=_settings(info),
            logs=data_dir / "logs",
            server_pid=None if temporal is None else temporal.pid,
            shard_pids=tuple(pid for shard in stack.shards if (pid := shard.pid()) is not None),
        )
    except BaseException:
        stack.stop()
        raise
    stack.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def given_stack(settings: Settings) -> BenchStack:
    """The stack of `settings` (a running `transfers dev`, or TEMPORAL_ADDRESS and SHARD_DSNS);
    the CPU of its server and shards is measured when they listen on this machine."""
    dsns = settings.dsn_list()
    info = StackInfo(
        temporal_address=settings.temporal_address,
        namespace=settings.temporal_namespace,
        task_queue=settings.transfers_task_queue,
        ui_url=settings.ui_url,
        shard_dsns=dsns,
    )
    listening = _listening_pids()
    shard_pids = [listening.get(_local_port(dsn)) for dsn in dsns]
    return BenchStack(
        info=info,
        settings=settings,
        logs=Path(tempfile.mkdtemp(prefix="transfers-bench-e2e-logs-")),
        server_pid=listening.get(_local_port(f"//{settings.temporal_address}")),
        shard_pids=tuple(pid for pid in shard_pids if pid is not None),
    )


def _settings(info: StackInfo) -> Settings:
    return Settings(
        temporal_address=info.temporal_address,
        temporal_namespace=info.namespace,
        transfers_task_queue=info.task_queue,
        shard_dsns=",".join(info.shard_dsns),
    )


def _local_port(url: str) -> int | None:
    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS and parts.hostname is not None:
        return None
    return parts.port


def _listening_pids() -> dict[int | None, int]:
    """Port -> pid of the processes listening on TCP here (those this user may see)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return {}
    return {
        connection.laddr.port: connection.pid
        for connection in connections
        if connection.status == psutil.CONN_LISTEN
        and connection.pid is not None
        and isinstance(connection.laddr, tuple)
        and connection.laddr
    }
