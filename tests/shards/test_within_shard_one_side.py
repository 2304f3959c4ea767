"""A same-shard transfer that finds one side of its request applied (a batch runs a same-shard pair
as its debit, then its credit): it hands that side back and writes the other, as the batch's next
step would; a compensation found there refuses it."""

from __future__ import annotations

import pytest

from shards.errors import AccountNotOpen, AlreadyCompensated, IdempotencyConflict
from shards.fingerprints import fingerprint_of
from shards.ledger import Ledger
from shards.schema import AccountStatus
from tests.shards.support import NewId, entry_kinds, ids_on_shard, open_funded

AMOUNT = 100


async def pair(ledger: Ledger, new_id: NewId) -> tuple[str, str, str, str]:
    """A funded source and an empty target on one shard, a transfer id and its request's digest."""
    source, target = ids_on_shard(ledger.router, new_id, shard=0, count=2)
    await open_funded(ledger, source, 1_000)
    await open_funded(ledger, target, 0)
    transfer = new_id("t")
    return source, target, transfer, fingerprint_of("transfer", transfer, source, target, AMOUNT)


async def balances(ledger: Ledger, *account_ids: str) -> list[int]:
    return [(await ledger.get_account(account_id)).balance for account_id in account_ids]


async def test_a_debit_found_is_handed_back_and_the_credit_written(
    ledger: Ledger, new_id: NewId
) -> None:
    source, target, transfer, digest = await pair(ledger, new_id)
    await ledger.debit(transfer, source, AMOUNT, "USD", digest)

    debit, credit = await ledger.transfer_within_shard(
        transfer, source, target, AMOUNT, "USD", digest
    )
    again = await ledger.transfer_within_shard(transfer, source, target, AMOUNT, "USD", digest)
    batch_credit = await ledger.credit(transfer, target, AMOUNT, "USD", digest)

    assert (debit.kind, debit.replayed, debit.balance_after) == ("debit", True, 900)
    assert (credit.kind, credit.replayed, credit.balance_after) == ("credit", False, 100)
    assert [entry.replayed for entry in again] == [True, True]
    assert (batch_credit.replayed, batch_credit.balance_after) == (True, 100)
    assert await balances(ledger, source, target) == [900, 100]
    assert [kind for _, kind, _, _ in await entry_kinds(ledger.router, target)] == ["credit"]


async def test_a_debit_found_stands_though_its_account_was_frozen_since(
    ledger: Ledger, new_id: NewId
) -> None:
    source, target, transfer, digest = await pair(ledger, new_id)
    await ledger.debit(transfer, source, AMOUNT, "USD", digest)
    await ledger.set_status(source, AccountStatus.FROZEN)

    _, credit = await ledger.transfer_within_shard(transfer, source, target, AMOUNT, "USD", digest)

    assert (credit.replayed, credit.balance_after) == (False, 100)
    assert await balances(ledger, source, target) == [900, 100]


async def test_a_credit_refused_after_the_debit_found_writes_nothing(
    ledger: Ledger, new_id: NewId
) -> None:
    """The workflow then settles by the entries: fence the credit, refund the debit."""
    source, target, transfer, digest = await pair(ledger, new_id)
    await ledger.debit(transfer, source, AMOUNT, "USD", digest)
    await ledger.set_status(target, AccountStatus.FROZEN)

    with pytest.raises(AccountNotOpen):
        await ledger.transfer_within_shard(transfer, source, target, AMOUNT, "USD", digest)

    assert await balances(ledger, source, target) == [900, 0]
    assert await entry_kinds(ledger.router, target) == []


@pytest.mark.parametrize("compensation", ["fenced credit", "refund"])
async def test_a_debit_found_being_compensated_refuses_the_transfer(
    ledger: Ledger, new_id: NewId, compensation: str
) -> None:
    source, target, transfer, digest = await pair(ledger, new_id)
    await ledger.debit(transfer, source, AMOUNT, "USD", digest)
    await ledger.fence_credit(transfer, target, AMOUNT, "USD", digest)
    if compensation == "refund":
        await ledger.refund(transfer, source, AMOUNT, "USD", digest)

    with pytest.raises(AlreadyCompensated):
        await ledger.transfer_within_shard(transfer, source, target, AMOUNT, "USD", digest)

    refunded = 1_000 if compensation == "refund" else 900
    assert await balances(ledger, source, target) == [refunded, 0]


async def test_a_credit_found_without_its_debit_gets_its_debit(
    ledger: Ledger, new_id: NewId
) -> None:
    """No batch writes a credit before its debit; the decision is total all the same, and the
    one a batch's debit step would take."""
    source, target, transfer, digest = await pair(ledger, new_id)
    await ledger.credit(transfer, target, AMOUNT, "USD", digest)

    debit, credit = await ledger.transfer_within_shard(
        transfer, source, target, AMOUNT, "USD", digest
    )

    assert (debit.replayed, debit.balance_after) == (False, 900)
    assert (credit.replayed, credit.balance_after) == (True, 100)
    assert await balances(ledger, source, target) == [900, 100]


async def test_another_requests_debit_refuses_the_transfer(ledger: Ledger, new_id: NewId) -> None:
    source, target, transfer, digest = await pair(ledger, new_id)
    other = fingerprint_of("transfer", transfer, source, target, AMOUNT + 1)
    await ledger.debit(transfer, source, AMOUNT, "USD", other)

    with pytest.raises(IdempotencyConflict):
        await ledger.transfer_within_shard(transfer, source, target, AMOUNT, "USD", digest)

    assert await balances(ledger, source, target) == [900, 0]
