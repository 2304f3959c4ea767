"""Ports for servers the dev stack and the tests start on 127.0.0.1."""

from __future__ import annotations

import random
import socket

# Below Linux's default ephemeral range (32768-60999): a server restarted on its port (the chaos
# test restarts Temporal and shards) cannot find it taken by an outgoing connection's local port.
SERVER_PORTS = range(20_000, 32_768)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range."""
    for _ in range(100):
        port = random.choice(SERVER_PORTS)  # noqa: S311 (picks a port, guards nothing)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:  # a crowded range: any port the kernel gives
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
