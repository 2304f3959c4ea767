"""Contention on real connections: no lost update, no overdraft, no deadlock, either strategy."""

from __future__ import annotations

import asyncio
import random

from shards.audit import run_audit
from shards.errors import InsufficientFunds
from shards.ledger import Ledger
from shards.records import StepResult
from tests.shards.support import NewId, ids_on_shard, open_funded

TRANSFERS = 1_000
ACCOUNTS = 10
OPENING_BALANCE = 1_000
# Twice and a half the shard's pool (10 + 10): connections are contended too, not only rows.
IN_FLIGHT = 50


async def test_fifty_debits_of_one_from_thirty_leave_exactly_zero(
    ledger: Ledger, new_id: NewId
) -> None:
    account = await open_funded(ledger, new_id("acc"), 30)
    before = await ledger.get_account(account)

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


async def test_thousand_same_shard_transfers_conserve_money(ledger: Ledger, new_id: NewId) -> None:
    accounts = ids_on_shard(ledger.router, new_id, shard=0, count=ACCOUNTS)
    for account in accounts:
        await open_funded(ledger, account, OPENING_BALANCE)
    chooser = random.Random(20_240_601)
    pairs = [chooser.sample(accounts, 2) for _ in range(TRANSFERS)]
    plans = [(new_id("t"), source, target, chooser.randint(1, 50)) for source, target in pairs]
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def transfer(transfer_id: str, source: str, target: str, amount: int) -> object:
        async with gate:
            return await ledger.transfer_within_shard(transfer_id, source, target, amount, "USD")

    outcomes = await asyncio.gather(*(transfer(*plan) for plan in plans), return_exceptions=True)

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
