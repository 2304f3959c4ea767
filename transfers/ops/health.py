"""The worker's health: alive (`/livez`: it polls its task queue) and ready (`/readyz`, `/healthz`:
it polls, Temporal answers, every shard answers).

A flood of health requests must not reach the ledger, so the dependencies are probed at most once
per CACHE_S, callers meanwhile share the probe in flight, and each shard is asked on a connection
of its own (application_name `transfers-health`), never on the activities' pool. What is down is
named (shard-1, Temporal) without the driver's message, which carries hosts and user names; the
worker's log has the full reason, once per change.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from sqlalchemy import text
from temporalio.client import Client
from temporalio.worker import Worker

from shards.router import ShardRouter
from shards.shard import Shard

PROBE_TIMEOUT_S = 2.0
# An orchestrator asks every few seconds; a second is as fresh as any of them needs.
CACHE_S = 1.0
APPLICATION_NAME = "transfers-health"

log = logging.getLogger("transfers.ops.health")


async def ping_shard(shard: Shard) -> None:
    """One `SELECT 1` on the shard's pool; its infrastructure error when it does not answer."""
    async with shard.begin() as connection:
        await connection.execute(text("SELECT 1"))


@dataclass(frozen=True)
class Problem:
    """What /healthz says (`line`: no host, user or DSN) and what the log says (`detail`)."""

    line: str
    detail: str


class ShardLine:
    """One shard's dedicated health connection: opened on first use, dropped after any failure."""

    def __init__(self, shard: Shard) -> None:
        self.name = shard.name
        # the pool's own URL, password included, in the form libpq reads
        url = shard.engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def ping(self) -> None:
        try:
            if self._connection is not None and await self._still_answers(self._connection):
                return
            self._connection = await psycopg.AsyncConnection.connect(
                self._conninfo,
                autocommit=True,
                application_name=APPLICATION_NAME,
                connect_timeout=math.ceil(PROBE_TIMEOUT_S),
            )
            await self._connection.execute("SELECT 1")
        except BaseException:  # a timeout may have cut a query short: never reuse it
            await self.close()
            raise

    async def _still_answers(self, connection: psycopg.AsyncConnection[Any]) -> bool:
        try:
            await connection.execute("SELECT 1")
        except psycopg.OperationalError:  # dropped since (a restart, a failover): ask anew
            await self.close()
            return False
        return True

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


class HealthProbe:
    """`check()`: the problems of the worker, none when healthy.

    Polling is asked each time (it costs nothing); the dependencies are probed at most once per
    `cache_s`. `liveness()` asks polling alone (/livez), `check()` both (/readyz, /healthz).
    """

    def __init__(
        self, worker: Worker, client: Client, router: ShardRouter, *, cache_s: float = CACHE_S
    ) -> None:
        self.worker = worker
        self.client = client
        self.cache_s = cache_s
        self._lines = [ShardLine(shard) for shard in router.shards]
        self._probe: asyncio.Task[list[Problem]] | None = None
        self._found: list[Problem] = []
        self._found_at = -math.inf

    async def check(self) -> list[str]:
        """Readiness: polling, then the dependencies."""
        polling = self.polling_problem()
        return [polling] if polling else await self.dependency_problems()

    async def liveness(self) -> list[str]:
        """Liveness: polling alone. A dependency that is down is no reason to restart a worker
        (a new one would find it down too); readiness takes the worker out of rotation instead."""
        polling = self.polling_problem()
        return [polling] if polling else []

    def polling_problem(self) -> str | None:
        if not self.worker.is_running or self.worker.is_shutdown:
            return "worker is not polling"
        return None

    async def dependency_problems(self) -> list[str]:
        """Temporal's and each shard's problem, from a probe at most `cache_s` old."""
        if asyncio.get_running_loop().time() - self._found_at >= self.cache_s:
            if self._probe is None:
                self._probe = asyncio.create_task(self._run_probe())
            # shielded: a request that goes away must not cancel the probe others wait for
            await asyncio.shield(self._probe)
        return [problem.line for problem in self._found]

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        for line in self._lines:
            await line.close()

    async def _run_probe(self) -> list[Problem]:
        try:
            checks = [self._temporal(), *(self._shard(line) for line in self._lines)]
            found = [problem for problem in await asyncio.gather(*checks) if problem]
            self._log_change(found)
            self._found, self._found_at = found, asyncio.get_running_loop().time()
            return found
        finally:
            self._probe = None

    async def _temporal(self) -> Problem | None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):  # whatever the RPC timeout covers
                await self.client.service_client.check_health(
                    timeout=timedelta(seconds=PROBE_TIMEOUT_S)
                )
        except Exception as error:  # any failure to answer is the finding
            return Problem("Temporal does not answer", _reason(error))
        return None

    async def _shard(self, line: ShardLine) -> Problem | None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await line.ping()
        except Exception as error:  # any failure to answer is the finding
            return Problem(f"{line.name} does not answer", _reason(error))
        return None

    def _log_change(self, found: list[Problem]) -> None:
        if [problem.line for problem in found] == [problem.line for problem in self._found]:
            return
        for problem in found:
            log.warning("health: %s: %s", problem.line, problem.detail)
        if not found:
            log.info("health: Temporal and every shard answer again")


def _reason(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {PROBE_TIMEOUT_S:g}s"
    first_line = str(error).strip().splitlines()[:1]
    return first_line[0] if first_line else type(error).__name__
