"""A hold resolves once: of two decisions racing, exactly one wins and the other is told why."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from shards.errors import HoldExpired, HoldNotActive
from tests.support.pending_holds import Held, PendingFor
from tests.support.workers import Accounts
from transfers.client import TransfersClient
from workflows.models import TransferOutcome, TransferStatus

pytestmark = [pytest.mark.usefixtures("worker"), pytest.mark.pending, pytest.mark.races]


def _split(
    results: Sequence[TransferOutcome | BaseException],
) -> tuple[TransferOutcome, BaseException]:
    """The one winner and the one loser of two racing decisions."""
    [winner] = [result for result in results if isinstance(result, TransferOutcome)]
    [loser] = [result for result in results if isinstance(result, BaseException)]
    return winner, loser


async def test_two_posts_at_once_capture_once(
    transfers: TransfersClient, accounts: Accounts, held: Held
) -> None:
    request = await held(500)
    source, target = request.source_account_id, request.target_account_id

    winner, loser = _split(
        await asyncio.gather(
            transfers.post(request.transfer_id, 200),
            transfers.post(request.transfer_id, 300),
            return_exceptions=True,
        )
    )

    assert winner.status == TransferStatus.COMPLETED
    assert isinstance(loser, HoldNotActive)
    assert "posted" in str(loser)
    posted = winner.entries[0].amount
    assert posted in {200, 300}
    assert (await accounts.balance(source), await accounts.balance(target)) == (
        1_000 - posted,
        posted,
    )


@pytest.mark.parametrize("first", ["post", "void"])
async def test_post_and_void_racing_the_first_accepted_wins(
    first: str, transfers: TransfersClient, accounts: Accounts, held: Held
) -> None:
    """Either order: the first decision's step waits on the source's row when the second
    arrives, so the second meets a running workflow that has decided, and is refused."""
    request = await held(400, shards=(2, 0))
    source, target = request.source_account_id, request.target_account_id
    decisions = {
        "post": lambda: transfers.post(request.transfer_id),
        "void": lambda: transfers.void(request.transfer_id),
    }
    [second] = set(decisions) - {first}

    async with accounts.row_locked(source):
        winning = asyncio.create_task(decisions[first]())
        try:
            await accounts.until_lock_waiters(source)
            # the running workflow's validator says "is posted"; a closed one "posted already"
            with pytest.raises(HoldNotActive, match=f"is {first}ed"):
                await decisions[second]()
        except BaseException:
            winning.cancel()
            raise
    winner = await asyncio.wait_for(winning, timeout=30)

    moved = 400 if first == "post" else 0
    assert winner.status == (TransferStatus.COMPLETED if moved else TransferStatus.VOIDED)
    source_view = await accounts.ledger.get_account(source)
    assert (source_view.balance, source_view.available) == (1_000 - moved, 1_000 - moved)
    assert await accounts.balance(target) == moved


async def test_posts_racing_the_timeout_complete_before_it_and_expire_after_it(
    transfers: TransfersClient, accounts: Accounts, pending_for: PendingFor
) -> None:
    """Posts sent around a 2 s hold's expires_at: each is wholly completed or wholly expired;
    those sent well before it complete, those sent after it expire (the shard's clock says)."""
    early_s, late_s = (-0.8, -0.5), (0.1, 0.3)
    offsets_s = (*early_s, -0.1, -0.05, 0.0, 0.05, *late_s)
    sources = [await accounts.open(100, shard=0) for _ in offsets_s]
    targets = [await accounts.open(0, shard=1) for _ in offsets_s]
    requests = [pending_for(s, t, 100, timeout_s=2) for s, t in zip(sources, targets, strict=True)]
    held = await asyncio.gather(*(transfers.submit_pending(request) for request in requests))

    async def post_at(offset_s: float, hold: TransferOutcome) -> TransferOutcome | HoldExpired:
        assert hold.expires_at is not None
        until_expiry_s = (hold.expires_at - datetime.now(UTC)).total_seconds()
        assert until_expiry_s + offset_s > 0, "the holds took too long to place"
        await asyncio.sleep(until_expiry_s + offset_s)
        try:
            return await transfers.post(hold.transfer_id)
        except HoldExpired as expired:
            return expired

    results = await asyncio.gather(*map(post_at, offsets_s, held))

    ends = {}
    for offset_s, result, request in zip(offsets_s, results, requests, strict=True):
        final = await transfers.submit_pending(request, wait=True)
        ends[offset_s] = final.status
        moved = 100 if final.status == TransferStatus.COMPLETED else 0
        if isinstance(result, HoldExpired):
            assert final.status == TransferStatus.EXPIRED
        else:
            assert (result, final.status) == (final, TransferStatus.COMPLETED)
        source_view = await accounts.ledger.get_account(request.source_account_id)
        assert (source_view.balance, source_view.available) == (100 - moved, 100 - moved)
        assert await accounts.balance(request.target_account_id) == moved
    assert [ends[offset_s] for offset_s in early_s] == [TransferStatus.COMPLETED] * len(early_s)
    assert [ends[offset_s] for offset_s in late_s] == [TransferStatus.EXPIRED] * len(late_s)
