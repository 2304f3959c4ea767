"""Cancelling a transfer: before the credit the source is refunded; after it nothing changes.

Each test holds a row lock so that a step cannot commit, waits until that step's attempt waits
for the lock, and only then cancels; the history shows the cancel arriving before the steps that
settle the transfer. A cancel reaches a workflow whose local step is running at the workflow
task's next heartbeat (every 8 s), so the tests wait for states, never for a fixed time; they do
not ask the status query meanwhile (it waits for that heartbeat too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from tests.support.lost_tasks import entries_of
from tests.support.workers import (
    Accounts,
    RecordingActivities,
    error_type,
    record_history,
    step_events,
    wait_for_failure,
)
from transfers.client import TransfersClient, workflow_id
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")

WORKER_LOCK_TIMEOUT_S = 1.0  # see the worker_router fixture
CANCEL_DELIVERED_S = 30.0  # a heartbeat of the workflow task (8 s), and a margin


async def test_cancel_while_the_credit_waits_refunds_the_source(
    transfers: TransfersClient,
    client: Client,
    activities: RecordingActivities,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(0, shard=1)
    request = request_for(source, target, 400)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))

    async with accounts.row_locked(target):  # the credit cannot commit
        await transfers.start(request)
        await accounts.until_lock_waiters(target)  # the credit's attempt waits for the lock
        assert await transfers.cancel(request.transfer_id) is True
        # the workflow had the cancel while the credit could not commit: the fence waits too
        fenced = await wait_for_failure(activities, "fence_credit", CANCEL_DELIVERED_S)
        assert fenced == "LockTimeout"
    outcome = await transfers.submit(request)  # waits for the end

    assert (outcome.status, outcome.step) == (TransferStatus.COMPENSATED, "refunded")
    assert error_type(outcome) == "Cancelled"
    assert [entry.kind for entry in outcome.entries] == ["debit", "refund"]
    events = await step_events(handle)
    _assert_in_order(events, "debit done", "cancel requested", "credit failed", "fence_credit done")
    _assert_in_order(events, "fence_credit done", "refund done")
    assert "credit done" not in events
    await asyncio.sleep(WORKER_LOCK_TIMEOUT_S)  # nothing is left to land late
    assert (await accounts.balance(source), await accounts.balance(target)) == (1_000, 0)
    await record_history(handle, "cancelled")


async def test_cancel_before_the_debit_lands_moves_nothing(
    transfers: TransfersClient,
    client: Client,
    activities: RecordingActivities,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=1)
    target = await accounts.open(0, shard=2)
    request = request_for(source, target, 400)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))

    async with accounts.row_locked(source):  # the debit cannot commit
        await transfers.start(request)
        await accounts.until_lock_waiters(source)  # the debit's attempt waits for the lock
        assert await transfers.cancel(request.transfer_id) is True
        # Once the refund has waited out the lock timeout, so has the abandoned debit attempt,
        # which started before it: the refund will find nothing to undo.
        refused = await wait_for_failure(activities, "refund", CANCEL_DELIVERED_S)
        assert refused == "LockTimeout"

    outcome = await transfers.submit(request)
    assert (outcome.status, outcome.step) == (TransferStatus.FAILED, "cancelled")
    assert error_type(outcome) == "Cancelled"
    assert [(entry.kind, entry.marker) for entry in outcome.entries] == [("refund", True)]
    # the debit never applied: the credit is fenced out and a refund marker refuses the debit
    rows = await entries_of(accounts.ledger, request.transfer_id)
    assert sorted((row.kind, row.marker) for row in rows) == [("credit", True), ("refund", True)]
    events = await step_events(handle)
    _assert_in_order(events, "claim done", "cancel requested", "debit failed", "fence_credit done")
    _assert_in_order(events, "fence_credit done", "refund done")
    assert "debit done" not in events
    assert (await accounts.balance(source), await accounts.balance(target)) == (1_000, 0)


async def test_cancel_during_the_refund_does_not_interrupt_it(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=2)
    target = await accounts.open(0, shard=0)
    await accounts.freeze(target)  # the credit will be refused...
    request = request_for(source, target, 400)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))

    target_lock = await accounts.lock_row(target)  # ...once this lock is gone
    await transfers.start(request)
    await accounts.until_lock_waiters(target)  # the debit is done, the credit waits
    source_lock = await accounts.lock_row(source)  # the refund will wait
    await target_lock.release()
    await accounts.until_lock_waiters(source)  # the refund's attempt waits for the lock
    assert await transfers.cancel(request.transfer_id) is True
    await _until_the_worker_has_the_cancel(handle)  # while the refund still cannot commit
    await source_lock.release()

    outcome = await transfers.submit(request)
    assert (outcome.status, outcome.step) == (TransferStatus.COMPENSATED, "refunded")
    assert error_type(outcome) == "AccountNotOpen"  # the reason stays the credit's refusal
    assert await accounts.balance(source) == 1_000
    events = await step_events(handle)
    _assert_in_order(
        events, "credit failed", "fence_credit done", "cancel requested", "refund done"
    )
    assert events.count("refund done") == 1


async def _until_the_worker_has_the_cancel(handle: WorkflowHandle[Any, Any]) -> None:
    """Until a workflow task starts after the cancel request: the worker got the cancel."""
    async with asyncio.timeout(CANCEL_DELIVERED_S):
        while True:
            requested = False
            async for event in handle.fetch_history_events():
                if event.HasField("workflow_execution_cancel_requested_event_attributes"):
                    requested = True
                elif requested and event.HasField("workflow_task_started_event_attributes"):
                    return
            await asyncio.sleep(0.1)


def _assert_in_order(events: list[str], *expected: str) -> None:
    """`expected` occur in `events` in this order (other events may come between)."""
    remaining = iter(events)
    missing = [event for event in expected if event not in remaining]
    assert not missing, f"{missing} not in order {expected} in {events}"
