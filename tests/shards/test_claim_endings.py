"""A claim records how its request ended where no entry can (an unknown source): `end_claims`
records it once, only for the claim's own request and only where the source shows no refund or
release; `claim` and `claim_batch` then hand it back as the first run's error."""

from __future__ import annotations

import pytest

from shards.errors import AccountNotFound, Cancelled, IdempotencyConflict
from shards.ledger import Ledger
from shards.records import Ending
from tests.shards.support import NewId, open_funded


def _ending(transfer_id: str, source: str, code: str = "AccountNotFound") -> Ending:
    return Ending(transfer_id, "digest-a", source, code, f"account {source} does not exist")


async def test_an_ending_without_entries_is_handed_back_by_every_later_claim(
    ledger: Ledger, new_id: NewId
) -> None:
    transfer, source = new_id("t"), new_id("acc")  # the source was never opened
    await ledger.claim(transfer, "digest-a")

    assert await ledger.end_claims([_ending(transfer, source)]) == [True]
    # a second ending (a concurrent run, another reason) leaves the first
    assert await ledger.end_claims([_ending(transfer, source, "Cancelled")]) == [True]

    with pytest.raises(AccountNotFound, match=f"account {source} does not exist"):
        await ledger.claim(transfer, "digest-a")
    refusals = await ledger.claim_batch([(transfer, "digest-a"), (transfer, "digest-b")])
    assert [type(refusal) for refusal in refusals] == [AccountNotFound, IdempotencyConflict]


async def test_an_ending_the_source_records_is_not_recorded_on_the_claim(
    ledger: Ledger, new_id: NewId
) -> None:
    transfer = new_id("t")
    source = await open_funded(ledger, new_id("acc"), 100)
    await ledger.claim(transfer, "digest-a")
    marker = await ledger.refund(transfer, source, 40, "USD", "digest-a")
    assert marker.marker

    assert await ledger.end_claims([_ending(transfer, source)]) == [False]
    await ledger.claim(transfer, "digest-a")  # still its owner, nothing recorded


async def test_another_requests_claim_is_not_ended(ledger: Ledger, new_id: NewId) -> None:
    transfer, source = new_id("t"), new_id("acc")
    await ledger.claim(transfer, "digest-b")

    await ledger.end_claims([_ending(transfer, source)])  # digest-a does not own the id

    await ledger.claim(transfer, "digest-b")
    with pytest.raises(IdempotencyConflict):
        await ledger.claim(transfer, "digest-a")


async def test_a_cancellation_is_handed_back_as_cancelled(ledger: Ledger, new_id: NewId) -> None:
    transfers = [new_id("t") for _ in range(3)]
    for transfer in transfers:
        await ledger.claim(transfer, "digest-a")
    endings = [_ending(t, new_id("acc"), "Cancelled") for t in transfers]

    assert await ledger.end_claims(endings) == [True] * 3

    refusals = await ledger.claim_batch([(t, "digest-a") for t in transfers])
    assert all(isinstance(refusal, Cancelled) for refusal in refusals)
    assert all(refusal is not None and refusal.code == "Cancelled" for refusal in refusals)
