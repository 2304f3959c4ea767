"""The worker's health over plain HTTP: 200 `ok`, or 503 with one line per problem.

    GET /livez    liveness: the process is up and its worker polls (no dependency is asked), for
                  a restart policy: a slow shard must not restart every worker
    GET /readyz   readiness: that, and Temporal and every shard answer (cached probe)
    GET /healthz  the same as /readyz (what it has always answered)

Bounded so that a flood costs the worker little: at most MAX_CONNECTIONS requests are served at
once (the rest get an immediate 503 `busy`), a request has READ_TIMEOUT_S and MAX_REQUEST_BYTES
per line to arrive, and the check behind it is cached (see transfers.ops.health).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

MAX_CONNECTIONS = 16
# Connections past MAX_CONNECTIONS are accepted and answered busy at once; a short accept queue
# would instead drop them in the kernel, and an orchestrator's probe would wait out SYN retries.
ACCEPT_BACKLOG = 128
READ_TIMEOUT_S = 2.0
WRITE_TIMEOUT_S = 5.0  # the probe itself takes up to transfers.ops.health.PROBE_TIMEOUT_S
MAX_REQUEST_BYTES = 8 * 1024
MAX_HEADER_LINES = 64
BUSY = "busy: too many health requests at once\n"

Check = Callable[[], Awaitable[list[str]]]


async def serve_health(
    host: str, port: int, check: Check, live: Check | None = None
) -> asyncio.Server:
    """Answer GET /readyz and /healthz with what `check` finds and, given `live`, GET /livez with
    what it finds, on `host`:`port` until the server is closed."""
    routes = {"/readyz": check, "/healthz": check} | ({"/livez": live} if live else {})
    serving = 0

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal serving
        if serving >= MAX_CONNECTIONS:
            writer.write(_http(503, "Service Unavailable", BUSY))
            writer.close()
            return
        serving += 1
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                request_line = await _read_head(reader)
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                writer.write(await _response(request_line, routes))
                await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass  # a client that went away, dawdled or sent lines over MAX_REQUEST_BYTES
        finally:
            serving -= 1
            writer.close()

    return await asyncio.start_server(
        respond, host, port, backlog=ACCEPT_BACKLOG, limit=MAX_REQUEST_BYTES
    )


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The request line; the headers are read past (none is needed), up to MAX_HEADER_LINES."""
    request_line = await reader.readline()
    for _ in range(MAX_HEADER_LINES):
        if not (await reader.readline()).strip():
            return request_line
    raise ValueError("too many header lines")


async def _response(request_line: bytes, routes: dict[str, Check]) -> bytes:
    method, path, *_ = [*request_line.decode("latin-1").split(), "", ""]
    check = routes.get(path.split("?")[0]) if method == "GET" else None
    if check is None:
        return _http(404, "Not Found", f"only GET {', '.join(sorted(routes))} are served\n")
    problems = await check()
    if problems:
        return _http(503, "Service Unavailable", "".join(f"{line}\n" for line in problems))
    return _http(200, "OK", "ok\n")


def _http(status: int, reason: str, body: str) -> bytes:
    payload = body.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + payload
