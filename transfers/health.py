"""`GET /healthz` for orchestrators: 200 while the worker polls and every shard answers, else 503.

The body lists what is wrong, one line each (shard names, never DSNs), so that `curl` or a
Kubernetes event says why a worker was taken out of service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from temporalio.client import Client
from temporalio.worker import Worker

from shards.router import ShardRouter
from shards.shard import Shard

PROBE_TIMEOUT_S = 2.0
REQUEST_TIMEOUT_S = 5.0
LISTEN_HOST = "0.0.0.0"  # noqa: S104 - probed from outside the container or pod

Check = Callable[[], Awaitable[list[str]]]


async def ping_shard(shard: Shard) -> None:
    """One `SELECT 1` on the shard; its infrastructure error when it does not answer."""
    async with shard.begin() as connection:
        await connection.execute(text("SELECT 1"))


@dataclass(frozen=True)
class WorkerHealth:
    """What a healthy worker needs: running, Temporal answering, every shard answering."""

    worker: Worker
    client: Client
    router: ShardRouter

    async def problems(self) -> list[str]:
        if not self.worker.is_running or self.worker.is_shutdown:
            return ["worker is not polling"]
        probes = [self._temporal(), *(self._shard(shard) for shard in self.router.shards)]
        return [problem for problem in await asyncio.gather(*probes) if problem]

    async def _temporal(self) -> str | None:
        try:
            await self.client.service_client.check_health(
                timeout=timedelta(seconds=PROBE_TIMEOUT_S)
            )
        except Exception as error:  # any failure to answer is the finding
            return f"Temporal does not answer: {type(error).__name__}"
        return None

    async def _shard(self, shard: Shard) -> str | None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await ping_shard(shard)
        except Exception as error:  # any failure to answer is the finding
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            return f"{shard.name} does not answer: {reason}"
        return None


async def serve_health(port: int, check: Check) -> asyncio.Server:
    """Answer GET /healthz on `port` with what `check` finds, until the server is closed."""

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                request_line = await reader.readline()
                while (await reader.readline()).strip():  # the headers: not needed
                    pass
                writer.write(await _response(request_line, check))
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass  # a probe that went away
        finally:
            writer.close()

    return await asyncio.start_server(respond, LISTEN_HOST, port)


async def _response(request_line: bytes, check: Check) -> bytes:
    method, path, *_ = [*request_line.decode("latin-1").split(), "", ""]
    if method != "GET" or path.split("?")[0] != "/healthz":
        return _http(404, "Not Found", "only GET /healthz is served\n")
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
