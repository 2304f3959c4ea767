"""/healthz and /metrics cannot be turned against the worker: they listen where told (loopback
by default), a flood of health requests probes each shard at most once a second on a connection
of its own, idle connections cannot crowd it out for long, and a 503 names no host or user."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from ipaddress import IPv4Address

import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.worker import Worker

from activities.ledger import LedgerActivities
from shards.router import ShardRouter
from transfers.devtools.embedded_pg import free_port
from transfers.ops.health import APPLICATION_NAME, HealthProbe
from transfers.ops.health_server import BUSY, MAX_CONNECTIONS, READ_TIMEOUT_S, serve_health
from transfers.ops.observability import Observability
from transfers.settings import Settings, settings_problem
from worker import build_worker

pytestmark = pytest.mark.security

LOOPBACK = "127.0.0.1"
ROUNDS, REQUESTS_PER_ROUND = 12, 60  # about 2.5 s of requests
TURNED_AWAY = (503, BUSY)
AUTOVACUUM_VISIT = 3  # transactions an autovacuum worker may commit in the fresh database

Stats = Callable[[], Awaitable[tuple[int, int]]]


async def _get(port: int, path: str = "/healthz", host: str = LOOPBACK) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        async with asyncio.timeout(10):
            request = f"GET {path} HTTP/1.1\r\nHost: worker\r\nConnection: close\r\n\r\n"
            writer.write(request.encode())
            await writer.drain()
            response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


async def _get_or_turned_away(port: int) -> tuple[int, str]:
    try:
        return await _get(port)
    except (ConnectionResetError, BrokenPipeError):  # the busy answer may race the request
        return TURNED_AWAY


def _libpq(dsn: str) -> str:
    return make_url(dsn).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(server_dsn: str) -> AsyncIterator[tuple[str, Stats]]:
    """A database of its own on the server of `server_dsn`: its DSN, and a function that waits
    for its last session to end and returns (sessions ever opened, transactions committed)."""
    name = f"health_{uuid.uuid4().hex[:12]}"
    admin = await psycopg.AsyncConnection.connect(_libpq(server_dsn), autocommit=True)

    async def row(query: str) -> tuple[int, ...]:
        found = await (await admin.execute(f"{query} WHERE datname = %s", (name,))).fetchone()
        assert found is not None
        return found

    async def stats() -> tuple[int, int]:
        async with asyncio.timeout(10):
            while (await row("SELECT count(*) FROM pg_stat_activity"))[0]:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        # a session's counts reach the statistics before it leaves pg_stat_activity
        sessions, transactions = await row("SELECT sessions, xact_commit FROM pg_stat_database")
        return sessions, transactions

    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(server_dsn).set(database=name).render_as_string(hide_password=False), stats
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def polling(worker: Worker) -> Worker:
    """The test worker once it polls: `async with` starts it in a task of its own."""
    async with asyncio.timeout(10):
        while not worker.is_running:  # noqa: ASYNC110 (a flag the SDK sets, no event to wait on)
            await asyncio.sleep(0.05)
    return worker


async def test_a_flood_of_health_requests_probes_each_shard_at_most_once_a_second(
    polling: Worker, client: Client, dsns: list[str]
) -> None:
    loop = asyncio.get_running_loop()
    async with fresh_database(dsns[0]) as (dsn, stats):
        activities_router = ShardRouter.from_dsns([dsn])
        probe = HealthProbe(polling, client, activities_router)
        port = free_port()
        server = await serve_health(LOOPBACK, port, probe.check)
        started = loop.time()
        answers: list[tuple[int, str]] = []
        try:
            for _ in range(ROUNDS):
                flood = (_get_or_turned_away(port) for _ in range(REQUESTS_PER_ROUND))
                answers += await asyncio.gather(*flood)
                await asyncio.sleep(0.2)
        finally:
            elapsed_s = loop.time() - started
            server.close()
            await probe.close()
            await activities_router.dispose()
        sessions, transactions = await stats()

    served = answers.count((200, "ok\n"))
    assert served + answers.count(TURNED_AWAY) == len(answers) == ROUNDS * REQUESTS_PER_ROUND
    assert served >= ROUNDS  # each round got answers
    # One session ever: the probe's own; the activities' pool never connected for a probe.
    assert sessions == 1
    # One transaction per probe (and at most one when the session starts), one probe a second.
    # The database's count also holds an autovacuum worker's visit, if the launcher's turn came
    # round during the flood (seen once in a loaded full run: 6 for 4): a little slack for it,
    # still far below one probe per round (ROUNDS) or per request.
    most_probes = int(elapsed_s) + 1
    assert 1 <= transactions <= most_probes + 1 + AUTOVACUUM_VISIT, (transactions, elapsed_s)


async def test_a_probe_reconnects_when_the_shard_drops_its_connection(
    polling: Worker, client: Client, dsns: list[str], router: ShardRouter
) -> None:
    probe = HealthProbe(polling, client, router, cache_s=0)
    admin = await psycopg.AsyncConnection.connect(_libpq(dsns[1]), autocommit=True)
    try:
        assert await probe.check() == []
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (APPLICATION_NAME,),
        )
        assert await probe.check() == []  # a dropped connection is no reason for a 503
    finally:
        await probe.close()
        await admin.close()


async def test_a_503_names_what_is_down_without_host_user_or_password(polling: Worker) -> None:
    shard_port, temporal_port = free_port(), free_port()
    dead_dsn = f"postgresql://ledger_admin:s3cret@localhost:{shard_port}/ledger"
    dead_router = ShardRouter.from_dsns([dead_dsn])
    dead_temporal = await Client.connect(f"localhost:{temporal_port}", lazy=True)
    probe = HealthProbe(polling, dead_temporal, dead_router)
    port = free_port()
    server = await serve_health(LOOPBACK, port, probe.check)
    try:
        status, body = await _get(port)
    finally:
        server.close()
        await probe.close()
        await dead_router.dispose()

    assert status == 503
    assert body == "Temporal does not answer\nshard-0 does not answer\n"


async def test_idle_connections_cannot_hold_the_endpoint_for_long(
    polling: Worker, client: Client, router: ShardRouter
) -> None:
    probe = HealthProbe(polling, client, router)
    port = free_port()
    server = await serve_health(LOOPBACK, port, probe.check)
    idle = [await asyncio.open_connection(LOOPBACK, port) for _ in range(MAX_CONNECTIONS)]
    try:
        await asyncio.sleep(0.5)  # all of them accepted, none says a word
        while_crowded = await _get_or_turned_away(port)
        await asyncio.sleep(READ_TIMEOUT_S + 0.5)
        after_timeout = await _get(port)
    finally:
        for _, writer in idle:
            writer.close()
        server.close()
        await probe.close()

    assert while_crowded == TURNED_AWAY
    assert after_timeout == (200, "ok\n")


async def test_health_is_503_until_the_worker_polls(
    client: Client, settings: Settings, activities: LedgerActivities, router: ShardRouter
) -> None:
    idle = build_worker(client, settings, activities)  # built, never run
    probe = HealthProbe(idle, client, router)
    port = free_port()
    server = await serve_health(LOOPBACK, port, probe.check)
    try:
        assert await _get(port) == (503, "worker is not polling\n")
    finally:
        server.close()
        await probe.close()


def test_endpoints_listen_on_loopback_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEALTH_HOST", raising=False)
    monkeypatch.delenv("METRICS_HOST", raising=False)
    defaults = Settings(_env_file=None)
    assert (defaults.health_host, defaults.metrics_host) == (IPv4Address(LOOPBACK),) * 2


def test_a_host_that_is_no_ip_address_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_HOST", "all-interfaces")
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    assert settings_problem(refused.value) == (
        "METRICS_HOST: value is not a valid IPv4 or IPv6 address"
    )


async def test_health_host_and_metrics_host_bind_where_told(
    polling: Worker, client: Client, settings: Settings, router: ShardRouter
) -> None:
    # 127.0.0.2 is loopback too, but a different address: a socket bound to it alone refuses
    # connections to 127.0.0.1, as one bound to 127.0.0.1 refuses those from another machine.
    told = IPv4Address("127.0.0.2")
    health_port, metrics_port = free_port(), free_port()
    observability = Observability.from_settings(
        settings.model_copy(
            update={
                "health_host": told,
                "health_port": health_port,
                "metrics_host": told,
                "metrics_port": metrics_port,
            }
        )
    )
    async with observability.health_endpoint(polling, client, router):
        health = await _get(health_port, host=str(told))
        metrics_status, _ = await _get(metrics_port, "/metrics", host=str(told))
        for port in (health_port, metrics_port):
            with pytest.raises(ConnectionRefusedError):
                await _get(port, host=LOOPBACK)

    assert health == (200, "ok\n")
    assert metrics_status == 200
