"""A batch's stuck refund is tried again every BATCH_REFUND_RETRY_INTERVAL on its own, for ever,
until its cause is fixed: in simulated time (the time-skipping server skips the minute between
tries; a handle the client did not start skips none while it waits, so the test skips it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from activities.ledger import LedgerActivities
from tests.support.statements import recomputed_balance
from tests.support.stuck_refunds import BALANCE, NEAR_MAX_DEPOSIT, stuck_batch
from tests.support.workers import Accounts, record_history, running_worker
from transfers.client import TransfersClient
from transfers.settings import Settings
from workflows.batch_models import batch_workflow_id
from workflows.models import TransferRequest, TransferStatus
from workflows.policies import BATCH_REFUND_RETRY_INTERVAL


async def test_a_stuck_refund_goes_through_on_its_own_once_fixed(
    skipping_env: WorkflowEnvironment,
    settings: Settings,
    activities: LedgerActivities,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    transfers = TransfersClient(skipping_env.client, settings)
    async with running_worker(skipping_env.client, settings, activities):
        batch_id, [request], _ = await stuck_batch(transfers, accounts, request_for, stuck=1)
        await accounts.withdraw(request.source_account_id, NEAR_MAX_DEPOSIT)  # the fix
        started = time.monotonic()
        await skipping_env.sleep(BATCH_REFUND_RETRY_INTERVAL + timedelta(seconds=1))
        outcome = await transfers.batch_outcome(batch_id)
        elapsed_s = time.monotonic() - started

    assert elapsed_s < 30  # a minute of the batch's time, not of ours
    [transfer] = outcome.transfers
    assert (transfer.status, transfer.step) == (TransferStatus.COMPENSATED, "refunded")
    for account, expected in ((request.source_account_id, BALANCE), (request.target_account_id, 0)):
        assert await accounts.balance(account) == expected
        assert await recomputed_balance(accounts.ledger, account) == expected
    handle = skipping_env.client.get_workflow_handle(batch_workflow_id(batch_id))
    await record_history(handle, "batch_refund_tried_again")
