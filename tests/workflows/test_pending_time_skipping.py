"""A durable timer in simulated time: a 10-minute hold expires without waiting 10 minutes.

The shards' clock does not skip: when the timer fires, the shard still counts the hold as live.
That is the timer's normal clean-up path: it releases a hold whether or not the shard has
judged it lapsed yet.
"""

from __future__ import annotations

import time

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.ledger import LedgerActivities
from tests.support.pending_holds import PendingFor
from tests.support.workers import Accounts, running_worker
from transfers.client import TransfersClient
from transfers.settings import Settings
from workflows.models import TransferStatus

pytestmark = pytest.mark.pending

TEN_MINUTES_S = 600


async def test_ten_minute_hold_expires_without_waiting(
    skipping_env: WorkflowEnvironment,
    settings: Settings,
    activities: LedgerActivities,
    accounts: Accounts,
    pending_for: PendingFor,
) -> None:
    source = await accounts.open(1_000, shard=0)
    request = pending_for(source, await accounts.open(0, shard=1), 700, TEN_MINUTES_S)
    transfers = TransfersClient(skipping_env.client, settings)

    async with running_worker(skipping_env.client, settings, activities):
        started = time.monotonic()
        outcome = await transfers.submit_pending(request, wait=True)
        elapsed_s = time.monotonic() - started

    assert elapsed_s < 10  # measured: about 0.2 s
    assert (outcome.status, outcome.step) == (TransferStatus.EXPIRED, "expired")
    assert [(entry.kind, entry.amount) for entry in outcome.entries] == [("release", 700)]
    view = await accounts.ledger.get_account(source)
    assert (view.balance, view.held, view.available) == (1_000, 0, 1_000)
    hold = await accounts.ledger.get_hold(request.transfer_id, source)
    assert hold is not None
    # released by the timer while the shard's own clock still had most of 10 minutes to go
    assert (hold.status, hold.expired) == ("released", False)
