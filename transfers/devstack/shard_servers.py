"""The stack's PostgreSQL shards: durable data under <data-dir>/shards, migrated on every start."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from shards.migrate import upgrade
from transfers.devstack.ports import stable_port
from transfers.devstack.processes import StackError, log_tail
from transfers.embedded_pg import EmbeddedPostgres, free_port

FIRST_SHARD_PORT = 15432  # shard i prefers 15432 + i, clear of a system PostgreSQL on 5432


def shard_servers(data_dir: Path, count: int) -> list[EmbeddedPostgres]:
    """Servers over the data dir's shard folders, each on its preferred port when that is free."""
    servers: list[EmbeddedPostgres] = []
    for index in range(count):
        folder = data_dir / "shards" / f"shard-{index}"
        # A server a killed run left behind still owns its folder (and maybe its port).
        EmbeddedPostgres(folder, port=0).stop()
        port = stable_port(FIRST_SHARD_PORT + index)
        while port in (server.port for server in servers):  # two fallbacks drew the same port
            port = free_port()
        servers.append(EmbeddedPostgres(folder, port, durable=True))
    return servers


def _start(index: int, server: EmbeddedPostgres) -> None:
    try:
        server.start()
    except subprocess.CalledProcessError as error:
        output = (error.stderr or b"").decode(errors="replace").strip()
        raise StackError(
            f"shard {index} (PostgreSQL, port {server.port}) did not start: {output}\n"
            f"last lines of {server.data_dir / 'server.log'}:\n"
            + log_tail(server.data_dir / "server.log")
        ) from None


async def start_and_migrate(servers: list[EmbeddedPostgres]) -> None:
    """Start and migrate the shards one by one: EmbeddedPostgres opens up the permissions of the
    whole shards folder while it prepares one server, which would break a sibling's start."""
    for index, server in enumerate(servers):
        await asyncio.to_thread(_start, index, server)
        try:
            await asyncio.to_thread(upgrade, server.dsn)
        except Exception as error:
            raise StackError(f"shard {index}: migrations failed: {error}") from error


def stop_all(servers: list[EmbeddedPostgres]) -> None:
    for server in servers:
        server.stop("fast")
