"""Cancelling a transfer: before the credit the source is refunded; after it nothing changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from temporalio.client import Client

from tests.workflows.conftest import (
    Accounts,
    RecordingActivities,
    error_type,
    record_history,
    wait_for_failure,
    wait_for_step,
)
from transfers.client import TransfersClient, workflow_id
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")

WORKER_LOCK_TIMEOUT_S = 1.0  # see the worker_router fixture


async def test_cancel_while_the_credit_waits_refunds_the_source(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(0, shard=1)
    request = request_for(source, target, 400)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))

    async with accounts.row_locked(target):  # the credit cannot commit
        await transfers.submit(request, wait=False)
        await wait_for_step(handle, "crediting")
        await asyncio.sleep(0.3)  # let the credit's attempt start waiting for the lock
        assert await transfers.cancel(request.transfer_id) is True
        await wait_for_step(handle, "settling-credit")  # the fence waits for the lock too
    outcome = await transfers.submit(request)  # waits for the end

    assert (outcome.status, outcome.step) == (TransferStatus.COMPENSATED, "refunded")
    assert error_type(outcome) == "Cancelled"
    assert [entry.kind for entry in outcome.entries] == ["debit", "refund"]
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
        await transfers.submit(request, wait=False)
        await wait_for_step(handle, "debiting")
        await asyncio.sleep(0.3)
        await transfers.cancel(request.transfer_id)
        # Once the refund has waited out the lock timeout, so has the abandoned debit attempt,
        # which started before it: the refund will find nothing to undo.
        assert await wait_for_failure(activities, "refund") == "LockTimeout"

    outcome = await transfers.submit(request)
    assert (outcome.status, outcome.step) == (TransferStatus.FAILED, "cancelled")
    assert error_type(outcome) == "Cancelled"
    assert [(entry.kind, entry.marker) for entry in outcome.entries] == [("refund", True)]
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
    await transfers.submit(request, wait=False)
    await wait_for_step(handle, "crediting")
    source_lock = await accounts.lock_row(source)  # the refund waits
    await target_lock.release()
    await wait_for_step(handle, "refunding")
    await transfers.cancel(request.transfer_id)
    await asyncio.sleep(0.3)
    await source_lock.release()

    outcome = await transfers.submit(request)
    assert (outcome.status, outcome.step) == (TransferStatus.COMPENSATED, "refunded")
    assert error_type(outcome) == "AccountNotOpen"  # the reason stays the credit's refusal
    assert await accounts.balance(source) == 1_000
    assert [
        event
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_execution_cancel_requested_event_attributes")
    ]
