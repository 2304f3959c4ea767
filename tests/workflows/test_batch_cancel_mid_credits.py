"""A batch cancelled in the middle of its credit step: one shard's credits have committed, another
shard's wait for a locked row. The credit step is one activity over every shard, so the workflow
has heard of neither; the cancel makes it settle every debited transfer by its entries: the
credits that landed complete their transfers, the others are fenced out and refunded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from temporalio.client import Client

from tests.support.batch_settlement import assert_transfers_settled, entries_by_transfer
from tests.support.workers import Accounts, record_history
from tests.workflows.test_batch import ends, until_every_step
from transfers.client import TransfersClient
from workflows.batch_models import batch_workflow_id
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")


async def _credited(accounts: Accounts, request: TransferRequest) -> bool:
    rows = await entries_by_transfer(accounts.ledger, [request.transfer_id])
    return any(row.kind == "credit" for row in rows[request.transfer_id])


async def test_a_batch_cancelled_between_two_shards_credits_settles_each_by_its_entries(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=0)
    landed = await accounts.open(shard=1)
    waiting = await accounts.open(shard=2)
    batch = [
        request_for(source, landed, 100),
        request_for(source, waiting, 200),
        request_for(source, landed, 300),
    ]

    async with accounts.row_locked(waiting):  # shard 2's credits wait for the row
        batch_id = await transfers.start_batch(batch)
        await accounts.until_lock_waiters(waiting)
        async with asyncio.timeout(10):  # shard 1's credits commit meanwhile
            while not await _credited(accounts, batch[2]):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        running = await transfers.batch_status(batch_id)
        assert await transfers.cancel_batch(batch_id)
        # released once the cancellation is seen: the fences on shard 2 wait for the row too
        await until_every_step(transfers, batch_id, "settling-credit")
    outcome = await transfers.batch_outcome(batch_id)

    assert {t.status for t in running.transfers} == {TransferStatus.DEBITED}
    assert ends(outcome) == [
        ("COMPLETED", "completed", None),
        ("COMPENSATED", "refunded", "Cancelled"),
        ("COMPLETED", "completed", None),
    ]
    balances = await assert_transfers_settled(
        accounts.ledger,
        batch,
        outcome.transfers,
        held_before={source: 1_000, landed: 0, waiting: 0},
    )
    assert balances == {source: 600, landed: 400, waiting: 0}
    await record_history(
        client.get_workflow_handle(batch_workflow_id(batch_id)), "batch_cancelled_mid_credits"
    )
