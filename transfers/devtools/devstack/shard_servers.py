"""The stack's PostgreSQL shards: durable data under <data-dir>/shards, migrated on every start."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import NoReturn

from shards.migrate import upgrade
from transfers.devtools.devstack.ports import stable_port
from transfers.devtools.devstack.processes import StackError
from transfers.devtools.embedded_pg import EmbeddedPostgres, ServerStartError, free_port

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


PORT_ATTEMPTS = 3


def _start(index: int, server: EmbeddedPostgres) -> None:
    """Start one shard; a port taken between our check and PostgreSQL's bind moves it to another."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            server.start()
            return
        except ServerStartError as error:
            if "Address already in use" in error.log and attempt < PORT_ATTEMPTS:
                server.port = free_port()
                continue
            _fail_start(index, server, error)


def _fail_start(index: int, server: EmbeddedPostgres, error: ServerStartError) -> NoReturn:
    raise StackError(
        f"shard {index} (PostgreSQL, port {server.port}) did not start: {error}\n"
        f"(its log: {server.log_path})"
    ) from None


async def start_and_migrate(servers: list[EmbeddedPostgres]) -> None:
    """Start and migrate the shards one by one (2 cores: parallel starts gain little)."""
    for index, server in enumerate(servers):
        await asyncio.to_thread(_start, index, server)
        try:
            await asyncio.to_thread(upgrade, server.dsn)
        except Exception as error:
            raise StackError(f"shard {index}: migrations failed: {error}") from error


def stop_all(servers: list[EmbeddedPostgres]) -> None:
    for server in servers:
        server.stop("fast")
