"""Contention on real connections: no lost update, no overdraft, no deadlock, either strategy.

A deadlock under the optimistic strategy comes back as a serialization failure that is retried
in silence, so each race also reads PostgreSQL's own count of the deadlocks it broke."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import cast

import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from shards.audit import run_audit
from shards.errors import InsufficientFunds
from shards.ledger import Ledger
from shards.records import StepResult
from shards.router import ShardRouter
from shards.shard import PoolSettings, Shard
from tests.shards.support import NewId, ids_on_shard, open_funded

pytestmark = pytest.mark.races

TRANSFERS = 1_000
ACCOUNTS = 10
OPENING_BALANCE = 1_000
# A pool that never closes a connection, so that each one's statistics can be read afterwards.
POOL = PoolSettings(pool_size=20, max_overflow=0)
# Twice and a half the shard's pool: connections are contended too, not only rows.
IN_FLIGHT = 50


@pytest.fixture
async def racing(dsns: list[str], ledger: Ledger) -> AsyncIterator[Ledger]:
    """`ledger`'s lock strategy on a router of its own, with the POOL above."""
    router = ShardRouter.from_dsns(dsns, POOL)
    yield Ledger(router, ledger.strategy)
    await router.dispose()


async def deadlocks(router: ShardRouter) -> int:
    """Deadlocks PostgreSQL has detected in the shards' databases so far."""
    return sum([await _deadlocks(shard) for shard in router.shards])


async def _deadlocks(shard: Shard) -> int:
    # A backend publishes its statistics when idle, at most once a second, else up to 10 s
    # later. Every pooled connection is told to publish now: pg_stat_force_next_flush takes
    # effect as its transaction ends, before the server answers the commit.
    idle = cast(QueuePool, shard.engine.pool).checkedin()
    async with AsyncExitStack() as stack:
        connections = [
            await stack.enter_async_context(shard.engine.connect()) for _ in range(max(idle, 1))
        ]
        for connection in connections:
            await connection.execute(text("SELECT pg_stat_force_next_flush()"))
            await connection.commit()
        count = await connections[0].scalar(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
    return int(count)


async def test_fifty_debits_of_one_from_thirty_leave_exactly_zero(
    racing: Ledger, new_id: NewId
) -> None:
    ledger = racing
    account = await open_funded(ledger, new_id("acc"), 30)
    before = await ledger.get_account(account)
    deadlocks_before = await deadlocks(ledger.router)

    outcomes = await asyncio.gather(
        *(ledger.debit(new_id("t"), account, 1, "USD") for _ in range(50)),
        return_exceptions=True,
    )

    applied = [outcome for outcome in outcomes if isinstance(outcome, StepResult)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, InsufficientFunds)]
    assert (len(applied), len(refused)) == (30, 20)
    # Every debit saw the balance the previous one left: no two read the same value.
    assert sorted(result.balance_after for result in applied) == list(range(30))
    after = await ledger.get_account(account)
    assert (after.balance, after.version) == (0, before.version + 30)
    assert await deadlocks(ledger.router) == deadlocks_before


async def test_thousand_same_shard_transfers_conserve_money(racing: Ledger, new_id: NewId) -> None:
    ledger = racing
    accounts = ids_on_shard(ledger.router, new_id, shard=0, count=ACCOUNTS)
    for account in accounts:
        await open_funded(ledger, account, OPENING_BALANCE)
    chooser = random.Random(20_240_601)
    pairs = [chooser.sample(accounts, 2) for _ in range(TRANSFERS)]
    plans = [(new_id("t"), source, target, chooser.randint(1, 50)) for source, target in pairs]
    gate = asyncio.Semaphore(IN_FLIGHT)
    deadlocks_before = await deadlocks(ledger.router)

    async def transfer(transfer_id: str, source: str, target: str, amount: int) -> object:
        async with gate:
            return await ledger.transfer_within_shard(transfer_id, source, target, amount, "USD")

    outcomes = await asyncio.gather(*(transfer(*plan) for plan in plans), return_exceptions=True)

    assert await deadlocks(ledger.router) == deadlocks_before

    # Only a business refusal is acceptable: no deadlock, serialization or version error.
    unexpected = [
        o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, InsufficientFunds)
    ]
    assert unexpected == []
    assert sum(isinstance(o, tuple) for o in outcomes) > TRANSFERS * 0.9
    views = [await ledger.get_account(account) for account in accounts]
    assert sum(view.balance for view in views) == ACCOUNTS * OPENING_BALANCE
    report = await run_audit(ledger.router)
    assert set(report.account_mismatches).isdisjoint(accounts)
    assert set(report.contradictions).isdisjoint(plan[0] for plan in plans)
