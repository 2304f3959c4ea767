"""Which 127.0.0.1 ports the stack may listen on."""

from __future__ import annotations

import socket

from transfers.devtools.devstack.processes import StackError
from transfers.devtools.embedded_pg import free_port


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        # SO_REUSEADDR: a port left in TIME_WAIT by our last run is free; a listener still blocks.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def require_free(port: int, option: str) -> None:
    if port_in_use(port):
        raise StackError(
            f"port {port} is already in use by another program: free it or pass {option}"
        )


def stable_port(preferred: int) -> int:
    """`preferred` so DSNs stay the same across restarts; any free port when it is taken."""
    return free_port() if port_in_use(preferred) else preferred
