"""A hold resolves once: of two decisions racing, exactly one wins and the other is told why."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from shards.errors import HoldExpired, HoldNotActive
from tests.pending.conftest import Held, PendingFor
from tests.workflows.conftest import Accounts
from transfers.client import TransfersClient
from workflows.models import TransferOutcome, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")


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


async def test_post_racing_void(transfers: TransfersClient, accounts: Accounts, held: Held) -> None:
    request = await held(400, shards=(2, 0))
    source, target = request.source_account_id, request.target_account_id

    winner, loser = _split(
        await asyncio.gather(
            transfers.post(request.transfer_id),
            transfers.void(request.transfer_id),
            return_exceptions=True,
        )
    )

    assert isinstance(loser, HoldNotActive)
    moved = 400 if winner.status == TransferStatus.COMPLETED else 0
    assert winner.status in {TransferStatus.COMPLETED, TransferStatus.VOIDED}
    source_view = await accounts.ledger.get_account(source)
    assert (source_view.balance, source_view.available) == (1_000 - moved, 1_000 - moved)
    assert await accounts.balance(target) == moved


async def test_posts_racing_the_timeout_either_complete_or_expire(
    transfers: TransfersClient, accounts: Accounts, pending_for: PendingFor
) -> None:
    """Posts sent around a 1 s hold's expires_at: each is wholly completed or wholly expired."""
    offsets_s = (-0.4, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.3)
    sources = [await accounts.open(100, shard=0) for _ in offsets_s]
    targets = [await accounts.open(0, shard=1) for _ in offsets_s]
    requests = [pending_for(s, t, 100, timeout_s=1) for s, t in zip(sources, targets, strict=True)]
    held = await asyncio.gather(*(transfers.submit_pending(request) for request in requests))

    async def post_at(offset_s: float, hold: TransferOutcome) -> TransferOutcome | HoldExpired:
        assert hold.expires_at is not None
        until_expiry_s = (hold.expires_at - datetime.now(UTC)).total_seconds()
        await asyncio.sleep(max(until_expiry_s + offset_s, 0))
        try:
            return await transfers.post(hold.transfer_id)
        except HoldExpired as expired:
            return expired

    results = await asyncio.gather(*map(post_at, offsets_s, held))

    for result, request in zip(results, requests, strict=True):
        final = await transfers.submit_pending(request, wait=True)
        moved = 100 if final.status == TransferStatus.COMPLETED else 0
        if isinstance(result, HoldExpired):
            assert final.status == TransferStatus.EXPIRED
        else:
            assert (result, final.status) == (final, TransferStatus.COMPLETED)
        source_view = await accounts.ledger.get_account(request.source_account_id)
        assert (source_view.balance, source_view.available) == (100 - moved, 100 - moved)
        assert await accounts.balance(request.target_account_id) == moved
