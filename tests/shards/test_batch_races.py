"""Batches racing single steps and other batches on one hot account, under either strategy: no
deadlock, no lost update, and the audit finds every account equal to its entries."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from shards.audit import run_audit
from shards.errors import InsufficientFunds
from shards.ledger import Ledger
from shards.records import BatchStep, StepResult
from shards.router import ShardRouter
from tests.shards.support import NewId, ids_on_shard, open_funded
from tests.shards.test_batch_steps import step
from tests.shards.test_ledger_races import POOL, deadlocks
from tests.support.statements import recomputed_balance

pytestmark = pytest.mark.races

HOT_FUNDS = 3_000
BATCH = 60


@pytest.fixture
async def racing(dsns: list[str], ledger: Ledger) -> AsyncIterator[Ledger]:
    """`ledger`'s lock strategy on a router of its own, with test_ledger_races' pool."""
    router = ShardRouter.from_dsns(dsns, POOL)
    yield Ledger(router, ledger.strategy)
    await router.dispose()


async def test_batches_and_single_steps_on_one_hot_account(racing: Ledger, new_id: NewId) -> None:
    ledger = racing
    hot = await open_funded(ledger, new_id("acc"), HOT_FUNDS)
    neighbour = await open_funded(  # same shard as `hot`: a two-row transfer locks both
        ledger, ids_on_shard(ledger.router, new_id, ledger.router.index_for(hot), 1)[0], 500
    )
    others = [await open_funded(ledger, new_id("acc"), 500) for _ in range(12)]
    chooser = random.Random(16)
    transfers: list[str] = []
    deadlocks_before = await deadlocks(ledger.router)

    async def batch(source: str | None) -> None:
        """BATCH transfers out of `hot` (source None) or into it: debits, then their credits."""
        pairs = [
            (hot, chooser.choice(others)) if source is None else (chooser.choice(others), hot)
            for _ in range(BATCH)
        ]
        debits = [step(new_id("t"), payer, chooser.randint(1, 9)) for payer, _ in pairs]
        transfers.extend(debit.transfer_id for debit in debits)
        debited = await ledger.debit_batch(debits)
        credits = [
            BatchStep(debit.transfer_id, payee, debit.amount, "USD", debit.fingerprint)
            for debit, (_, payee), outcome in zip(debits, pairs, debited, strict=True)
            if isinstance(outcome, StepResult)
        ]
        credited = await ledger.credit_batch(credits)
        assert all(isinstance(outcome, StepResult) for outcome in credited)
        assert all(isinstance(o, StepResult | InsufficientFunds) for o in debited)

    async def single(target: str) -> None:
        transfer = step(new_id("t"), hot, chooser.randint(1, 9))
        transfers.append(transfer.transfer_id)
        if target == neighbour:
            await ledger.transfer_within_shard(
                transfer.transfer_id, hot, neighbour, transfer.amount, "USD", transfer.fingerprint
            )
            return
        try:
            await ledger.debit(transfer.transfer_id, hot, transfer.amount, "USD")
        except InsufficientFunds:
            return
        await ledger.credit(transfer.transfer_id, target, transfer.amount, "USD")

    flows = [batch(None) for _ in range(8)] + [batch(hot) for _ in range(4)]
    flows += [single(chooser.choice([*others, neighbour, neighbour])) for _ in range(80)]
    chooser.shuffle(flows)
    await asyncio.gather(*flows)

    assert await deadlocks(ledger.router) == deadlocks_before
    accounts = [hot, neighbour, *others]
    views = [await ledger.get_account(account) for account in accounts]
    assert sum(view.balance for view in views) == HOT_FUNDS + 500 * 13  # every debit credited
    assert await recomputed_balance(ledger, hot) == views[0].balance
    report = await run_audit(ledger.router)
    assert set(report.account_mismatches).isdisjoint(accounts)
    assert set(report.contradictions).isdisjoint(transfers)


async def test_concurrent_claims_of_overlapping_batches_agree_on_one_owner(
    racing: Ledger, new_id: NewId
) -> None:
    ledger = racing
    ids = [new_id("t") for _ in range(200)]
    requests = [
        [(transfer_id, f"request-{n}") for transfer_id in random.Random(n).sample(ids, len(ids))]
        for n in range(6)
    ]

    outcomes = await asyncio.gather(*(ledger.claim_batch(claims) for claims in requests))

    owners: dict[str, list[str]] = {transfer_id: [] for transfer_id in ids}
    for claims, refused in zip(requests, outcomes, strict=True):
        for (transfer_id, fingerprint), refusal in zip(claims, refused, strict=True):
            if refusal is None:
                owners[transfer_id].append(fingerprint)
    assert all(len(found) == 1 for found in owners.values())
