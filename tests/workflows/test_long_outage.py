"""A step that waits out a long outage does not grow its workflow's history without bound.

A local activity that keeps failing keeps its workflow task alive with heartbeats, each adding
events to the history (about 1,350 an hour). After LOCAL_STEP_ATTEMPTS the step goes on as a
regular activity, whose retries the server keeps out of the history. The attempts are cut to 2
here and the source's row held locked (each attempt fails with LockTimeout) for 12 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from temporalio.client import Client

from tests.support.workers import Accounts, steps_in_history, wait_for_step
from transfers.client import TransfersClient, workflow_id
from workflows import policies
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")

OUTAGE_S = 12
# Started, the first task, claim and route markers, the local attempts' task heartbeats within
# the 2 local attempts, the debit's scheduled/started/completed, the credit, the status upserts, the
# end: a fixed number, whatever OUTAGE_S is.
MAX_EVENTS = 40


async def test_a_step_outlasting_its_local_attempts_goes_on_as_a_regular_activity(
    monkeypatch: pytest.MonkeyPatch,
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    monkeypatch.setattr(policies, "LOCAL_STEP_ATTEMPTS", 2)
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(0, shard=1)
    request = request_for(source, target, 400)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))

    async with accounts.row_locked(source):  # every debit attempt times out on the lock
        await transfers.submit(request, wait=False)
        await wait_for_step(handle, "debiting")
        await asyncio.sleep(OUTAGE_S)
    outcome = await asyncio.wait_for(transfers.submit(request), timeout=60)
    events = [event async for event in handle.fetch_history_events()]

    assert outcome.status == TransferStatus.COMPLETED, outcome
    assert (await accounts.balance(source), await accounts.balance(target)) == (600, 400)
    # the local debit gave up after its attempts (its failure marker, when the task recorded
    # it), the regular one applied it, and the credit ran locally again
    steps = await steps_in_history(handle)
    assert (steps[0], set(steps[1:-1]), steps[-1]) == ("claim", {"debit"}, "credit")
    regular = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert regular == ["debit"]
    assert len(events) <= MAX_EVENTS, len(events)
