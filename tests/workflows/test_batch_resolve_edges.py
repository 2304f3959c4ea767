"""An operator's decisions about a batch's stuck refund at the edges (found by a review as an
attacker would): the same request stuck in two batches, a refund that committed in a lost
workflow task, and a batch cancelled while its refunds wait."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
from temporalio.client import Client

from tests.support.statements import recomputed_balance, statement_pages
from tests.support.stuck_refunds import (
    AMOUNT,
    BALANCE,
    NEAR_MAX_DEPOSIT,
    stuck_batch,
    until_batch_step,
)
from tests.support.workers import Accounts
from transfers.batch_client import BatchMember
from transfers.client import RefundNotStuck, TransferNotFound, TransfersClient
from workflows.batch import TransferBatchWorkflow
from workflows.batch_models import batch_workflow_id
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")

NOTE = "paid back by wire 99"
RESOLVED = (TransferStatus.COMPENSATED, "resolved-by-operator")


async def _stuck_in_two_batches(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> tuple[str, str, TransferRequest]:
    """The same request stuck in batch A and in B, A resubmitted under another batch id: B
    claims the id too (same request), finds A's debit, and its refund is refused alike."""
    batch_a, [request], _ = await stuck_batch(transfers, accounts, request_for, stuck=1)
    batch_b = await transfers.start_batch([request], batch_id=f"{batch_a}-again")
    in_b = await until_batch_step(transfers, batch_b, request.transfer_id, "refund-stuck")
    assert in_b.step == "refund-stuck", in_b
    return batch_a, batch_b, request


async def _debit_stands_written_off(accounts: Accounts, request: TransferRequest) -> None:
    expected = BALANCE - AMOUNT + NEAR_MAX_DEPOSIT  # debited, paid back by hand, not by us
    assert await accounts.balance(request.source_account_id) == expected
    assert await recomputed_balance(accounts.ledger, request.source_account_id) == expected


async def test_the_other_batch_of_a_request_agrees_with_its_resolve(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """The resolve goes to the newest batch (B); A's next try finds B's marker beside its own
    debit and ends as resolved too, not FAILED as if nothing had been taken."""
    batch_a, batch_b, request = await _stuck_in_two_batches(transfers, accounts, request_for)
    transfer_id = request.transfer_id
    located = await transfers.locate(transfer_id)
    resolved = await transfers.resolve(transfer_id, NOTE)
    # A's own next try comes within a minute: asked for now
    await client.get_workflow_handle(batch_workflow_id(batch_a)).execute_update(
        TransferBatchWorkflow.retry_compensation, transfer_id
    )
    [in_a] = (await transfers.batch_outcome(batch_a)).transfers

    assert isinstance(located, BatchMember)
    assert located.batch_id == batch_b
    assert (resolved.status, resolved.step) == RESOLVED
    assert (in_a.status, in_a.step) == RESOLVED
    assert in_a.error is not None
    assert in_a.error.type == "ResolvedByOperator"
    assert in_a.error.message.startswith("settled by hand, as another run of this request")
    await _debit_stands_written_off(accounts, request)


async def test_a_second_operator_meets_the_first_ones_resolve_not_the_other_batch(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """Once B has ended resolved, the id is still stuck in A until A's next try. A second
    operator's decision goes to the newest batch holding the id (B), whatever order visibility
    lists them in, and is refused with B's end: nothing invites a second payment by hand."""
    batch_a, batch_b, request = await _stuck_in_two_batches(transfers, accounts, request_for)
    transfer_id = request.transfer_id
    await transfers.resolve(transfer_id, "operator 1: paid by wire 1")
    in_a = await until_batch_step(transfers, batch_a, transfer_id, "refund-stuck")
    ended = rf"in batch {batch_b} is COMPENSATED \(resolved-by-operator\): no refund is stuck"
    with pytest.raises(RefundNotStuck, match=ended):
        await transfers.resolve(transfer_id, "operator 2: paid by wire 2")
    with pytest.raises(RefundNotStuck, match=ended):
        await transfers.retry_refund(transfer_id)
    # A's own next try comes within a minute: asked for now
    await client.get_workflow_handle(batch_workflow_id(batch_a)).execute_update(
        TransferBatchWorkflow.retry_compensation, transfer_id
    )
    [a_ended] = (await transfers.batch_outcome(batch_a)).transfers

    assert in_a.step == "refund-stuck"
    assert (a_ended.status, a_ended.step) == RESOLVED
    assert a_ended.error is not None
    assert a_ended.error.message.startswith("settled by hand, as another run of this request")
    await _debit_stands_written_off(accounts, request)


async def test_a_stuck_transfer_of_a_batch_past_the_scanned_ones_is_still_found(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`find_batch` reads the most recent batches only; a batch older than those, its refund
    stuck, is found among the running batches that `RefundStuck` marks: `status` and the
    decisions reach it (here `find_batch` finds nothing, as for a batch past its scan)."""
    batch_id, [request], _ = await stuck_batch(transfers, accounts, request_for, stuck=1)

    async def past_the_scan(_: TransfersClient, transfer_id: str) -> None:
        return None

    monkeypatch.setattr(TransfersClient, "find_batch", past_the_scan)
    async with asyncio.timeout(10):  # `RefundStuck` reaches visibility a moment after it is set
        while True:
            with contextlib.suppress(TransferNotFound):
                found = await transfers.locate(request.transfer_id)
                break
            await asyncio.sleep(0.3)
    resolved = await transfers.resolve(request.transfer_id, "paid by wire 5")

    assert isinstance(found, BatchMember)
    assert found.batch_id == batch_id
    assert (resolved.status, resolved.step) == RESOLVED


async def test_a_resolve_after_a_refund_lost_with_its_task_reports_the_refund(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """A try of the refund committed on the shard in a workflow task that was then lost (the
    history still says refund-stuck): written on the shard directly, as the lost step would.
    The resolve finds the refund: REFUNDED, no marker, the source paid back once."""
    batch_id, [request], _ = await stuck_batch(transfers, accounts, request_for, stuck=1)
    source = request.source_account_id
    await accounts.withdraw(source, NEAR_MAX_DEPOSIT)
    await accounts.ledger.refund(
        request.transfer_id, source, request.amount, request.currency, request.fingerprint()
    )
    still = await transfers.locate(request.transfer_id)
    resolved = await transfers.resolve(request.transfer_id, "paid back by wire 3")
    await transfers.batch_outcome(batch_id)

    assert isinstance(still, BatchMember)
    assert still.outcome.step == "refund-stuck"  # what the history says
    assert (resolved.status, resolved.step) == (TransferStatus.COMPENSATED, "refunded")
    pages = await statement_pages(accounts.ledger, source)
    assert [e.marker for page in pages for e in page if e.kind == "refund"] == [False]
    assert await accounts.balance(source) == BALANCE
    assert await recomputed_balance(accounts.ledger, source) == BALANCE


async def test_a_cancel_leaves_stuck_refunds_to_the_operator(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """Cancelling the batch while its refunds wait changes nothing of them, nor does a cancel
    sent while a resolve's marker is being recorded."""
    batch_id, [paid, fixed], _ = await stuck_batch(transfers, accounts, request_for, stuck=2)
    handle = client.get_workflow_handle(batch_workflow_id(batch_id))
    assert await transfers.cancel_batch(batch_id)
    after_cancel = await until_batch_step(transfers, batch_id, fixed.transfer_id, "refund-stuck")
    await handle.execute_update(
        TransferBatchWorkflow.resolve_compensation, args=[paid.transfer_id, "wire 1"]
    )
    await handle.cancel()
    await until_batch_step(transfers, batch_id, fixed.transfer_id, "refund-stuck")  # tried again
    await accounts.withdraw(fixed.source_account_id, NEAR_MAX_DEPOSIT)
    await transfers.retry_refund(fixed.transfer_id)
    outcome = await transfers.batch_outcome(batch_id)

    assert after_cancel.step == "refund-stuck"
    assert [(t.status, t.step) for t in outcome.transfers] == [
        RESOLVED,
        (TransferStatus.COMPENSATED, "refunded"),
    ]
    for account, expected in (
        (paid.source_account_id, BALANCE - AMOUNT + NEAR_MAX_DEPOSIT),
        (fixed.source_account_id, BALANCE),
    ):
        assert await accounts.balance(account) == expected
        assert await recomputed_balance(accounts.ledger, account) == expected
