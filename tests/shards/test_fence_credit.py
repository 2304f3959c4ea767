"""Settling an uncertain credit: hand back a credit that landed, or fence out one that did not."""

from collections.abc import Callable

import pytest

from shards.errors import AlreadyCompensated
from shards.ledger import Ledger
from tests.shards.support import ids_on_shard, open_funded


async def test_fence_after_a_landed_credit_returns_it(
    ledger: Ledger, new_id: Callable[[str], str]
) -> None:
    target, transfer = new_id("acc"), new_id("t")
    await ledger.open_account(target, "USD")
    await ledger.credit(transfer, target, 700, "USD")

    fence = await ledger.fence_credit(transfer, target, 700, "USD")

    assert (fence.marker, fence.replayed, fence.balance_after) == (False, True, 700)
    assert (await ledger.get_account(target)).balance == 700


async def test_fence_before_the_credit_refuses_it_for_good(
    ledger: Ledger, new_id: Callable[[str], str]
) -> None:
    target, transfer = new_id("acc"), new_id("t")
    await ledger.open_account(target, "USD")

    fence = await ledger.fence_credit(transfer, target, 700, "USD")
    again = await ledger.fence_credit(transfer, target, 700, "USD")

    assert (fence.marker, again.marker, again.replayed) == (True, True, True)
    with pytest.raises(AlreadyCompensated):
        await ledger.credit(transfer, target, 700, "USD")
    assert (await ledger.get_account(target)).balance == 0


async def test_fence_refuses_a_late_same_shard_transfer(
    ledger: Ledger, new_id: Callable[[str], str]
) -> None:
    source, target = ids_on_shard(ledger.router, new_id, shard=0, count=2)
    await open_funded(ledger, source, 500)
    await open_funded(ledger, target, 0)
    transfer = new_id("t")

    await ledger.fence_credit(transfer, target, 200, "USD")

    with pytest.raises(AlreadyCompensated):
        await ledger.transfer_within_shard(transfer, source, target, 200, "USD")
    assert (await ledger.get_account(source)).balance == 500
    assert (await ledger.get_account(target)).balance == 0
