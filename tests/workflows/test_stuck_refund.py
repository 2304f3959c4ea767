"""A refund that is refused never gives up silently: it waits for an operator's Update.

The refusal is provoked honestly through the ledger: while the credit waits on a row lock, a
deposit brings the source so close to the largest storable balance that the refund would
overflow it (InvalidAmount, non-retryable).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError

from shards.audit import run_audit
from shards.validation import MAX_AMOUNT
from tests.support.workers import Accounts, error_type, record_history, wait_for_step
from transfers.client import TransfersClient, workflow_id
from transfers.settings import Settings
from workflows.models import TransferOutcome, TransferRequest, TransferStatus
from workflows.transfer import TransferWorkflow

pytestmark = pytest.mark.usefixtures("worker")

BALANCE, AMOUNT = 1_000, 100
# after the debit the source holds BALANCE - AMOUNT; with this on top, the refund overflows
NEAR_MAX_DEPOSIT = MAX_AMOUNT - (BALANCE - AMOUNT) - AMOUNT // 2


@contextlib.contextmanager
def update_refused(reason: str) -> Iterator[None]:
    """The Update's validator refused it for `reason`, not for another failure."""
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        yield
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError), cause
    assert (cause.type, cause.message) == ("ValueError", reason)


async def stuck_refund(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request: TransferRequest,
) -> WorkflowHandle[TransferWorkflow, TransferOutcome]:
    """Run `request` (to a frozen target) until its refund is stuck."""
    handle = client.get_workflow_handle_for(TransferWorkflow.run, workflow_id(request.transfer_id))
    async with accounts.row_locked(request.target_account_id):
        await transfers.submit(request, wait=False)
        await wait_for_step(handle, "crediting")
        with update_refused("no refund is stuck: the transfer is DEBITED (crediting)"):
            await handle.execute_update(TransferWorkflow.retry_compensation)
        await accounts.deposit(request.source_account_id, NEAR_MAX_DEPOSIT)
    await wait_for_step(handle, "refund-stuck")
    return handle


@pytest.fixture
async def request_to_frozen(
    accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> TransferRequest:
    source = await accounts.open(BALANCE, shard=0)
    target = await accounts.open(0, shard=1)
    await accounts.freeze(target)
    return request_for(source, target, AMOUNT)


async def test_stuck_refund_is_visible_then_retried(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_to_frozen: TransferRequest,
) -> None:
    request = request_to_frozen
    handle = await stuck_refund(transfers, client, accounts, request)

    stuck = await transfers.status(request.transfer_id)
    assert (stuck.status, error_type(stuck)) == (TransferStatus.COMPENSATING, "InvalidAmount")
    metadata = await handle.query("__temporal_workflow_metadata")
    assert "retry_compensation" in metadata.current_details

    await accounts.withdraw(request.source_account_id, NEAR_MAX_DEPOSIT)  # the operator's fix
    await handle.execute_update(TransferWorkflow.retry_compensation)
    outcome = await handle.result()

    assert (outcome.status, outcome.step) == (TransferStatus.COMPENSATED, "refunded")
    assert error_type(outcome) == "AccountNotOpen"  # the credit's refusal, the real reason
    assert await accounts.balance(request.source_account_id) == BALANCE
    # The retried refund is a regular activity scheduled after the Update's acceptance: it
    # could not commit while the history still said the refund was stuck (issue #11 case 9).
    events = [event async for event in handle.fetch_history_events()]
    accepted = [
        n
        for n, e in enumerate(events)
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    scheduled = [
        n
        for n, e in enumerate(events)
        if e.activity_task_scheduled_event_attributes.activity_type.name == "refund"
    ]
    assert len(accepted) == 1
    assert len(scheduled) == 1
    assert scheduled[0] > accepted[0]


async def test_stuck_refund_resolved_by_an_operator(
    transfers: TransfersClient,
    client: Client,
    settings: Settings,
    accounts: Accounts,
    request_to_frozen: TransferRequest,
) -> None:
    request = request_to_frozen
    handle = await stuck_refund(transfers, client, accounts, request)

    with update_refused("say how the refund was settled"):
        await handle.execute_update(TransferWorkflow.resolve_compensation, "  ")
    await handle.execute_update(TransferWorkflow.resolve_compensation, "paid back by hand, #42")
    outcome = await handle.result()

    assert (outcome.status, outcome.step) == (TransferStatus.COMPENSATED, "resolved-by-operator")
    assert error_type(outcome) == "ResolvedByOperator"
    assert outcome.error is not None
    assert outcome.error.message.startswith("paid back by hand, #42")
    # the debit stands, written off; the marker keeps any refund from landing after the operator's
    assert [(e.kind, e.marker) for e in outcome.entries] == [("debit", False), ("refund", True)]
    await accounts.withdraw(request.source_account_id, NEAR_MAX_DEPOSIT)
    await record_history(handle, "refund_resolved")

    # Run again (a resubmission after retention, a foreign client): the refund must not land now
    # that it could, or the operator's payment would be a second one.
    again = await client.start_workflow(
        TransferWorkflow.run,
        request,
        id=workflow_id(request.transfer_id),
        task_queue=settings.transfers_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    await again.result()
    assert await accounts.balance(request.source_account_id) == BALANCE - AMOUNT

    async def ended(transfer_ids: list[str]) -> set[str]:
        return set(transfer_ids)

    report = await run_audit(accounts.ledger.router, workflow_ended=ended)
    assert request.transfer_id not in report.stranded
    assert request.transfer_id not in report.contradictions
