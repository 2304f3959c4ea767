"""A marker's opening re-run reads in READ COMMITTED whatever the server's default (found by the
second review of 0006): where a shard's database defaults to REPEATABLE READ, a transaction's
snapshot would be taken by its first statement, `SELECT lock_account_openings(...)`, before that
statement waits for the lock, and every read after it would miss an account opened while it
waited; the pool's connections now ask for READ COMMITTED (shards.shard).

The interleaving, made deterministic here: the opening of A is inserted, not committed (its
trigger holds A's opening lock); an uncommitted entry (t, refund) keeps the refund's insert
waiting on the unique key once it has decided; the refund of t on A starts, finds no A, and waits
for A's opening lock; A commits and is funded; the refund must now see A (a real marker on its
row, or the refund of the debit), never a marker without the row beside a debit of t.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from shards.errors import AlreadyCompensated
from shards.ledger import Ledger
from shards.lock_strategy import LockStrategy
from shards.migrate import upgrade
from shards.router import ShardRouter
from tests.shards.support import NewId, assert_refunded_or_never_debited

AMOUNT = 100
FUNDS = 1_000
RACING_S = 0.5  # ample for a deposit and a debit that wait for nothing
DATABASE = "probe_repeatable_read"


@pytest.fixture(scope="module")
def repeatable_read_dsn(dsns: list[str]) -> str:
    """A shard database (on the first test server) whose sessions default to REPEATABLE READ."""
    with psycopg.connect(dsns[0], autocommit=True) as admin:
        found = admin.execute("SELECT FROM pg_database WHERE datname = %s", [DATABASE])
        if not found.fetchone():
            admin.execute(f"CREATE DATABASE {DATABASE}")
            admin.execute(
                f"ALTER DATABASE {DATABASE} SET default_transaction_isolation = 'repeatable read'"
            )
    dsn = make_url(dsns[0]).set(database=DATABASE).render_as_string(hide_password=False)
    upgrade(dsn)
    return dsn


@pytest.fixture(params=[LockStrategy.PESSIMISTIC, LockStrategy.OPTIMISTIC])
async def rr_ledger(
    repeatable_read_dsn: str, request: pytest.FixtureRequest
) -> AsyncIterator[Ledger]:
    router = ShardRouter.from_dsns([repeatable_read_dsn])
    yield Ledger(router, request.param)
    await router.dispose()


async def _waiting_on_a_transaction(watcher: psycopg.AsyncConnection[Any], pid: int) -> None:
    """Until some other session waits on `pid`'s transaction (a unique key it inserted)."""
    query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND %s = ANY(pg_blocking_pids(pid))"
    async with asyncio.timeout(10):
        while True:
            row = await (await watcher.execute(query, [pid])).fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.02)


async def _fund_and_debit(ledger: Ledger, source: str, transfer: str) -> None:
    await ledger.deposit(f"dep-{source}", source, FUNDS, "USD")
    with contextlib.suppress(AlreadyCompensated):
        await ledger.debit(transfer, source, AMOUNT, "USD")


async def test_a_refund_racing_the_sources_opening_never_lands_beside_a_debit_whatever_the_default_isolation(  # noqa: E501
    rr_ledger: Ledger, repeatable_read_dsn: str, new_id: NewId
) -> None:
    ledger = rr_ledger
    source, transfer = new_id("acc"), new_id("t")
    connect = psycopg.AsyncConnection.connect
    async with (
        await connect(repeatable_read_dsn) as opening,
        await connect(repeatable_read_dsn) as blocker,
        await connect(repeatable_read_dsn, autocommit=True) as watcher,
    ):
        await opening.execute(
            "INSERT INTO accounts (account_id, currency) VALUES (%s, 'USD')", [source]
        )  # not committed: its trigger holds the opening lock
        await blocker.execute(
            "INSERT INTO entries (transfer_id, kind, account_id, amount, marker) "
            "VALUES (%s, 'refund', %s, %s, true)",
            [transfer, source, AMOUNT],
        )  # not committed: the refund's own insert will wait on this key
        refund = asyncio.create_task(ledger.refund(transfer, source, AMOUNT, "USD"))
        await _waiting_on_a_transaction(watcher, opening.info.backend_pid)  # the opening lock
        await opening.commit()
        await _waiting_on_a_transaction(watcher, blocker.info.backend_pid)  # decided, inserting
        # a concurrent run of the request: funds arrive, its debit comes; with the opening
        # read in READ COMMITTED both wait for the refund's row and the debit is refused
        racing = asyncio.create_task(_fund_and_debit(ledger, source, transfer))
        await asyncio.sleep(RACING_S)
        await blocker.rollback()
        await refund
        await racing

    await assert_refunded_or_never_debited(ledger, source, transfer, FUNDS)
