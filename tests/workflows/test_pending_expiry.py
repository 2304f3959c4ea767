"""Real expiry by the shard's clock, with a 1 s hold: the database decides, not the workflow.

A capture that reaches the shard after `expires_at` is refused even though its post was accepted
in time; a lapsed hold stops reducing available funds while no worker runs at all.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from temporalio.client import Client

from activities.ledger import LedgerActivities
from shards.errors import HoldExpired
from tests.support.pending_holds import Held
from tests.support.workers import Accounts, record_history, running_worker, wait_for_step
from transfers.client import TransfersClient, workflow_id
from transfers.settings import Settings
from workflows.models import TransferOutcome, TransferStatus

pytestmark = pytest.mark.pending

TTL_S = 1.0
MARGIN_S = 0.3  # past expires_at by this much, whatever the rounding between the two clocks


async def _sleep_past_expiry(held: TransferOutcome) -> None:
    """Until the hold's expires_at has passed (shard and tests share this machine's clock)."""
    assert held.expires_at is not None
    remaining_s = (held.expires_at - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(remaining_s, 0) + MARGIN_S)


@pytest.mark.usefixtures("worker")
async def test_capture_after_expiry_is_refused_though_the_post_came_in_time(
    transfers: TransfersClient, client: Client, accounts: Accounts, held: Held
) -> None:
    request = await held(600, timeout_s=TTL_S)
    source, target = request.source_account_id, request.target_account_id

    async with accounts.row_locked(source):  # the capture cannot reach the row in time
        post = asyncio.create_task(transfers.post(request.transfer_id))
        handle = client.get_workflow_handle(workflow_id(request.transfer_id))
        await wait_for_step(handle, "capturing")  # the post was accepted before the expiry
        await _sleep_past_expiry(await transfers.status(request.transfer_id))
    with pytest.raises(HoldExpired, match="expired"):
        await post
    outcome = await transfers.status(request.transfer_id)

    assert (outcome.status, outcome.step) == (TransferStatus.EXPIRED, "expired")
    assert outcome.error is not None
    assert outcome.error.type == "HoldExpired"
    view = await accounts.ledger.get_account(source)
    assert (view.balance, view.held, view.available) == (1_000, 0, 1_000)
    assert await accounts.balance(target) == 0


async def test_lapsed_hold_frees_the_funds_with_no_worker_running(
    transfers: TransfersClient,
    client: Client,
    settings: Settings,
    activities: LedgerActivities,
    accounts: Accounts,
    held: Held,
) -> None:
    async with running_worker(client, settings, activities):
        request = await held(700, shards=(2, 0), timeout_s=TTL_S)
        status = await transfers.status(request.transfer_id)
    source = request.source_account_id
    during = await accounts.ledger.get_account(source)

    await _sleep_past_expiry(status)
    after = await accounts.ledger.get_account(source)
    async with running_worker(client, settings, activities):  # its timer only cleans up
        outcome = await transfers.submit_pending(request, wait=True)

    assert during.available == 300
    # Nothing ran: no worker, no write to the account; the shard's clock alone freed the funds.
    assert (after.available, after.version) == (1_000, during.version)
    assert (outcome.status, outcome.step) == (TransferStatus.EXPIRED, "expired")
    assert [(entry.kind, entry.amount) for entry in outcome.entries] == [("release", 700)]
    view = await accounts.ledger.get_account(source)
    assert (view.balance, view.held, view.available) == (1_000, 0, 1_000)
    await record_history(
        client.get_workflow_handle(workflow_id(request.transfer_id)), "pending_expired"
    )
