"""Markers on accounts not opened yet, markers never written (another request's entries) and
entries without a fingerprint, against a second run of the request: a credit fenced (or a debit
refunded) on an account that did not exist leaves its marker, so a run of the same request that
gets there after the account opens is refused (migration 0006, shards.engine.openings)."""

from __future__ import annotations

import contextlib

import pytest

from shards.errors import AccountNotFound, BusinessError, IdempotencyConflict
from shards.fingerprints import fingerprint_of
from shards.ledger import Ledger
from shards.records import BatchStep
from tests.shards.support import NewId, id_on_other_shard, ids_on_shard, open_funded

AMOUNT = 100


async def _total(ledger: Ledger, *account_ids: str) -> int:
    return sum([(await ledger.get_account(account_id)).balance for account_id in account_ids])


def _steps(transfer: str, account_id: str, digest: str) -> list[BatchStep]:
    return [BatchStep(transfer, account_id, AMOUNT, "USD", digest)]


async def test_a_same_shard_pair_fenced_on_an_unknown_target_is_not_credited_and_refunded(
    ledger: Ledger, new_id: NewId
) -> None:
    source, target = ids_on_shard(ledger.router, new_id, shard=0, count=2)
    await open_funded(ledger, source, 1_000)
    transfer = new_id("t")
    digest = fingerprint_of("transfer", source, target, AMOUNT, "USD")
    [debit] = await ledger.debit_batch(_steps(transfer, source, digest))
    assert not isinstance(debit, BusinessError)
    [credit] = await ledger.credit_batch(_steps(transfer, target, digest))
    assert isinstance(credit, AccountNotFound)
    [fence] = await ledger.fence_credit_batch(_steps(transfer, target, digest))
    assert not isinstance(fence, BusinessError)
    assert fence.marker
    await ledger.open_account(target, "USD")

    # a single TransferWorkflow of the same request, between the batch's fence and refund
    with contextlib.suppress(BusinessError):
        await ledger.transfer_within_shard(transfer, source, target, AMOUNT, "USD", digest)
    [refund] = await ledger.refund_batch(_steps(transfer, source, digest))

    assert not isinstance(refund, BusinessError)
    assert await _total(ledger, source, target) == 1_000


async def test_a_credit_fenced_on_an_unknown_target_never_lands_beside_its_refund(
    ledger: Ledger, new_id: NewId
) -> None:
    source = ids_on_shard(ledger.router, new_id, shard=0, count=1)[0]
    target = id_on_other_shard(ledger.router, new_id, source)
    await open_funded(ledger, source, 1_000)
    transfer = new_id("t")
    digest = fingerprint_of("transfer", source, target, AMOUNT, "USD")
    await ledger.debit(transfer, source, AMOUNT, "USD", digest)
    with pytest.raises(AccountNotFound):
        await ledger.credit(transfer, target, AMOUNT, "USD", digest)
    assert (await ledger.fence_credit(transfer, target, AMOUNT, "USD", digest)).marker
    await ledger.open_account(target, "USD")

    with contextlib.suppress(BusinessError):  # run B of the request (a batch beside a single)
        await ledger.credit(transfer, target, AMOUNT, "USD", digest)
    await ledger.refund(transfer, source, AMOUNT, "USD", digest)  # run A settles

    assert await _total(ledger, source, target) == 1_000


async def test_a_debit_without_fingerprint_is_not_handed_to_another_target(
    ledger: Ledger, new_id: NewId
) -> None:
    source, new_target = ids_on_shard(ledger.router, new_id, shard=0, count=2)
    old_target = id_on_other_shard(ledger.router, new_id, source)
    await open_funded(ledger, source, 1_000)
    await open_funded(ledger, new_target, 0)
    await open_funded(ledger, old_target, 0)
    transfer = new_id("t")
    await ledger.debit(transfer, source, AMOUNT, "USD", None)  # recorded before fingerprints
    await ledger.credit(transfer, old_target, AMOUNT, "USD", None)
    digest = fingerprint_of("transfer", source, new_target, AMOUNT, "USD")

    with pytest.raises(IdempotencyConflict):  # as before d518038: one side applied
        await ledger.transfer_within_shard(transfer, source, new_target, AMOUNT, "USD", digest)

    assert await _total(ledger, source, new_target, old_target) == 1_000


async def test_a_debit_standing_beside_another_requests_entries_is_not_settled_by_a_marker(
    ledger: Ledger, new_id: NewId
) -> None:
    """A debit recorded without a fingerprint (a run started before 0002) beside a deposit given
    the id since: the refund is refused (refund-stuck, an operator settles it), never answered
    with an unwritten marker that would end the run FAILED while the debit stands."""
    source, other = ids_on_shard(ledger.router, new_id, shard=0, count=2)
    await open_funded(ledger, source, 1_000)
    await open_funded(ledger, other, 0)
    transfer = new_id("t")
    await ledger.debit(transfer, source, AMOUNT, "USD", None)  # recorded before fingerprints
    await ledger.deposit(transfer, other, 5, "USD")  # `accounts deposit --entry-id` of the id
    digest = fingerprint_of("transfer", source, new_id("acc"), AMOUNT, "USD")

    with pytest.raises(IdempotencyConflict):
        await ledger.refund(transfer, source, AMOUNT, "USD", digest)

    assert (await ledger.get_account(source)).balance == 1_000 - AMOUNT
