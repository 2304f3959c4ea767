"""One transfer id, one request: claims and fingerprints on real shards, raced where it matters."""

from __future__ import annotations

import asyncio

import pytest

from shards.errors import AlreadyCompensated, IdempotencyConflict
from shards.fingerprints import fingerprint_of
from shards.ledger import Ledger
from tests.shards.support import NewId, entry_count, ids_on_shard, open_funded

MINE = fingerprint_of("transfer", "a", "b", 400, "USD")
OTHER = fingerprint_of("transfer", "a", "c", 400, "USD")


async def test_twenty_requests_claiming_one_id_at_once_leave_one_owner(
    ledger: Ledger, new_id: NewId
) -> None:
    transfer = new_id("t")
    fingerprints = [fingerprint_of("transfer", "a", f"b{n}", 1, "USD") for n in range(20)]

    outcomes = await asyncio.gather(
        *(ledger.claim(transfer, fingerprint) for fingerprint in fingerprints),
        return_exceptions=True,
    )

    owners = [fp for fp, outcome in zip(fingerprints, outcomes, strict=True) if outcome is None]
    assert len(owners) == 1
    refused = [outcome for outcome in outcomes if outcome is not None]
    assert all(isinstance(outcome, IdempotencyConflict) for outcome in refused), refused
    await ledger.claim(transfer, owners[0])  # the owner's claim replays, as often as it comes


@pytest.mark.parametrize("step", ["debit", "credit"])
async def test_a_step_of_another_request_is_refused_where_the_id_has_entries(
    step: str, ledger: Ledger, new_id: NewId
) -> None:
    account = await open_funded(ledger, new_id("acc"), 1_000)
    transfer = new_id("t")
    await ledger.debit(transfer, account, 400, "USD", MINE)

    with pytest.raises(IdempotencyConflict, match="another request"):
        # the same account and amount: field by field it would have replayed
        await getattr(ledger, step)(transfer, account, 400, "USD", OTHER)
    assert (await ledger.get_account(account)).balance == 600


async def test_a_refund_of_another_request_is_owed_nothing_where_the_id_has_entries(
    ledger: Ledger, new_id: NewId
) -> None:
    """Its debit can never land here (refused, as above): a marker that was not written, not a
    refusal that no retry could change (a batch would retry it for ever)."""
    account = await open_funded(ledger, new_id("acc"), 1_000)
    transfer = new_id("t")
    await ledger.debit(transfer, account, 400, "USD", MINE)

    refund = await ledger.refund(transfer, account, 400, "USD", OTHER)

    assert (refund.kind, refund.marker) == ("refund", True)
    assert await entry_count(ledger.router, transfer_id=transfer) == 1  # the marker is not written
    assert (await ledger.get_account(account)).balance == 600
    again = await ledger.refund(transfer, account, 400, "USD", MINE)  # the owner's is intact
    assert (again.marker, again.replayed, again.balance_after) == (False, False, 1_000)


async def test_a_refunded_debit_is_refused_not_replayed(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 1_000)
    transfer = new_id("t")
    await ledger.debit(transfer, account, 400, "USD", MINE)
    await ledger.refund(transfer, account, 400, "USD", MINE)

    with pytest.raises(AlreadyCompensated):
        await ledger.debit(transfer, account, 400, "USD", MINE)
    assert (await ledger.get_account(account)).balance == 1_000


async def test_the_fence_never_refuses_and_says_when_a_credit_can_never_land(
    ledger: Ledger, new_id: NewId
) -> None:
    """Issue #11 case 8: a fence refused with IdempotencyConflict failed its workflow task for
    ever. Where the id's credit is another request's, this request's credit can never land."""
    target = await open_funded(ledger, new_id("acc"), 0)
    transfer = new_id("t")
    await ledger.deposit(new_id("dep"), target, 1, "USD")
    await ledger.credit(transfer, target, 400, "USD", OTHER)

    fence = await ledger.fence_credit(transfer, target, 400, "USD", MINE)
    theirs = await ledger.fence_credit(transfer, target, 400, "USD", OTHER)

    assert (fence.kind, fence.marker) == ("credit", True)  # absent for good: refund is safe
    assert (theirs.marker, theirs.replayed) == (False, True)  # the other's credit stands
    with pytest.raises(IdempotencyConflict):
        await ledger.credit(transfer, target, 400, "USD", MINE)
    assert (await ledger.get_account(target)).balance == 401


async def test_a_release_of_a_captured_hold_hands_back_the_capture(
    ledger: Ledger, new_id: NewId
) -> None:
    account = await open_funded(ledger, new_id("acc"), 1_000)
    transfer = new_id("t")
    await ledger.hold(transfer, account, 400, 60, "USD", MINE)
    await ledger.post(transfer, account, 300, MINE)

    release = await ledger.void(transfer, account, 400, MINE)
    later_post = await ledger.post(transfer, account, 200, MINE)  # a post of another amount

    assert (release.kind, release.amount, release.replayed) == ("capture", 300, True)
    assert (later_post.kind, later_post.amount, later_post.replayed) == ("capture", 300, True)
    view = await ledger.get_account(account)
    assert (view.balance, view.held) == (700, 0)


async def test_a_refunded_capture_is_never_handed_back_for_a_credit(
    ledger: Ledger, new_id: NewId
) -> None:
    source, target = ids_on_shard(ledger.router, new_id, 0, 2)  # the credit sees the refund
    await open_funded(ledger, source, 1_000)
    await open_funded(ledger, target, 0)
    transfer = new_id("t")
    await ledger.hold(transfer, source, 400, 60, "USD", MINE)
    await ledger.post(transfer, source, None, MINE)
    await ledger.refund(transfer, source, 400, "USD", MINE)

    release = await ledger.void(transfer, source, 400, MINE)

    assert (release.kind, release.marker) == ("refund", False)  # what settled the capture
    with pytest.raises(AlreadyCompensated):
        await ledger.credit(transfer, target, 400, "USD", MINE)
    assert (await ledger.get_account(target)).balance == 0
