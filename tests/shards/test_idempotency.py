"""(transfer_id, kind) is applied once however often it arrives; compensations fence late steps."""

from __future__ import annotations

import asyncio

import pytest

from shards.audit import run_audit
from shards.errors import AlreadyCompensated, IdempotencyConflict
from shards.ledger import Ledger
from shards.records import StepResult
from tests.shards.support import NewId, entry_kinds, ids_on_shard, open_funded


async def test_same_debit_twice_in_a_row_applies_once(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")

    first = await ledger.debit(transfer, account, 40, "USD")
    second = await ledger.debit(transfer, account, 40, "USD")

    assert (first.replayed, second.replayed) == (False, True)
    assert second.balance_after == first.balance_after == 60
    assert (await ledger.get_account(account)).balance == 60


async def test_same_debit_ten_times_at_once_applies_once(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")

    results = await asyncio.gather(*(ledger.debit(transfer, account, 40, "USD") for _ in range(10)))

    assert sum(not result.replayed for result in results) == 1
    assert {result.balance_after for result in results} == {60}
    view = await ledger.get_account(account)
    assert (view.balance, view.version) == (60, 3)  # opened, deposited, debited once


async def test_same_large_debit_ten_times_at_once_is_replayed_not_refused(
    ledger: Ledger, new_id: NewId
) -> None:
    # After the first applies, the balance no longer covers the amount: a replay that misread
    # the transfer's entries would come back as InsufficientFunds instead of the first result.
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")

    results = await asyncio.gather(*(ledger.debit(transfer, account, 70, "USD") for _ in range(10)))

    assert sum(not result.replayed for result in results) == 1
    assert {result.balance_after for result in results} == {30}
    assert (await ledger.get_account(account)).balance == 30


async def test_same_shard_transfer_ten_times_at_once_applies_once(
    ledger: Ledger, new_id: NewId
) -> None:
    source, target = ids_on_shard(ledger.router, new_id, shard=2, count=2)
    await open_funded(ledger, source, 100)
    await open_funded(ledger, target, 0)
    transfer = new_id("t")

    results = await asyncio.gather(
        *(ledger.transfer_within_shard(transfer, source, target, 60, "USD") for _ in range(10))
    )

    assert sum(not debit.replayed for debit, _ in results) == 1
    assert {(debit.balance_after, credit.balance_after) for debit, credit in results} == {(40, 60)}
    assert (await ledger.get_account(source)).balance == 40
    assert (await ledger.get_account(target)).balance == 60


async def test_same_credit_ten_times_at_once_applies_once(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 0)
    transfer = new_id("t")

    results = await asyncio.gather(*(ledger.credit(transfer, account, 7, "USD") for _ in range(10)))

    assert sum(not result.replayed for result in results) == 1
    assert (await ledger.get_account(account)).balance == 7


async def test_replay_with_another_amount_or_account_is_a_conflict(
    ledger: Ledger, new_id: NewId
) -> None:
    # Both accounts on one shard: (transfer_id, kind) is unique per shard.
    account, other = ids_on_shard(ledger.router, new_id, shard=1, count=2)
    await open_funded(ledger, account, 100)
    await open_funded(ledger, other, 100)
    transfer = new_id("t")
    await ledger.debit(transfer, account, 40, "USD")

    with pytest.raises(IdempotencyConflict):
        await ledger.debit(transfer, account, 41, "USD")
    with pytest.raises(IdempotencyConflict):
        await ledger.debit(transfer, other, 40, "USD")
    assert (await ledger.get_account(account)).balance == 60
    assert (await ledger.get_account(other)).balance == 100


async def test_refund_of_a_debit_that_never_happened_fences_the_late_debit(
    ledger: Ledger, new_id: NewId
) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")

    marker = await ledger.refund(transfer, account, 40, "USD")
    with pytest.raises(AlreadyCompensated):
        await ledger.debit(transfer, account, 40, "USD")
    again = await ledger.refund(transfer, account, 40, "USD")

    assert (marker.marker, marker.balance_after) == (True, 100)
    assert (again.marker, again.replayed) == (True, True)
    assert (await ledger.get_account(account)).balance == 100
    assert [kind for _, kind, _, _ in await entry_kinds(ledger.router, account)] == [
        "deposit",
        "refund",
    ]


async def test_refund_of_an_applied_debit_pays_it_back_once(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")
    await ledger.debit(transfer, account, 40, "USD")

    refunds = await asyncio.gather(*(ledger.refund(transfer, account, 40, "USD") for _ in range(5)))

    assert sum(not refund.replayed for refund in refunds) == 1
    assert not any(refund.marker for refund in refunds)
    assert (await ledger.get_account(account)).balance == 100
    with pytest.raises(IdempotencyConflict):
        await ledger.refund(transfer, account, 39, "USD")


async def test_debit_racing_its_refund_never_keeps_the_money(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 10_000)
    transfers = [new_id("t") for _ in range(40)]

    async def debit_and_refund_at_once(transfer: str) -> tuple[object, object]:
        debit, refund = await asyncio.gather(
            ledger.debit(transfer, account, 25, "USD"),
            ledger.refund(transfer, account, 25, "USD"),
            return_exceptions=True,
        )
        return debit, refund

    outcomes = await asyncio.gather(*(debit_and_refund_at_once(t) for t in transfers))

    for debit, refund in outcomes:
        assert isinstance(refund, StepResult)
        if isinstance(debit, StepResult):  # debit first: the refund paid it back
            assert not refund.marker
        else:  # refund first: a marker, and the debit was refused
            assert isinstance(debit, AlreadyCompensated)
            assert refund.marker
    assert (await ledger.get_account(account)).balance == 10_000
    report = await run_audit(ledger.router)
    assert account not in report.account_mismatches
    assert set(report.contradictions).isdisjoint(transfers)
