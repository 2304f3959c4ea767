"""Pending transfers after a lost workflow task: a hold, a capture or a release committed on the
shard without the history knowing, then a void, a post of another amount, the expiry, a cancel
or a frozen account. The end follows the shard: a capture found is credited (or refunded when
the credit is refused), never left stranded (issue #11 case 4)."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from shards.errors import HoldNotActive, IdempotencyConflict
from shards.schema import AccountStatus
from tests.support.lost_tasks import LostTask, assert_settled
from tests.support.pending_holds import Held, PendingFor
from tests.support.workers import (
    Accounts,
    RecordingActivities,
    record_history,
    running_worker,
)
from transfers.client import TransfersClient, workflow_id
from transfers.settings import Settings
from workflows.models import PendingTransferRequest, TransferOutcome, TransferStatus

pytestmark = [pytest.mark.pending, pytest.mark.lost_tasks]


async def _end(client: Client, request: PendingTransferRequest) -> TransferOutcome:
    handle = client.get_workflow_handle(
        workflow_id(request.transfer_id), result_type=TransferOutcome
    )
    return await asyncio.wait_for(handle.result(), timeout=60)


async def _assert_moved(
    accounts: Accounts, outcome: TransferOutcome, request: PendingTransferRequest, moved: int
) -> None:
    source, target = request.source_account_id, request.target_account_id
    await assert_settled(
        accounts.ledger,
        outcome,
        opening={source: 1_000, target: 0},
        balances={source: 1_000 - moved, target: moved},
    )


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize(
    ("interference", "status"),
    [
        ("void", TransferStatus.COMPLETED),
        ("cancel", TransferStatus.COMPLETED),
        ("expiry", TransferStatus.COMPLETED),
        ("freeze target, void", TransferStatus.COMPENSATED),
    ],
)
async def test_a_capture_whose_task_was_lost_is_credited_or_refunded(
    interference: str,
    status: TransferStatus,
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    held: Held,
) -> None:
    request = await held(400, timeout_s=3 if interference == "expiry" else 60)
    await LostTask(accounts.ledger, request).capture()  # a post whose task was lost

    if interference.startswith("freeze target"):
        await accounts.freeze(request.target_account_id)
    if interference.endswith("void"):
        await transfers.void(request.transfer_id)  # answers with the end the shard decided
    elif interference == "cancel":
        await transfers.cancel(request.transfer_id)
    outcome = await _end(client, request)  # "expiry": the workflow's timer fires

    assert outcome.status == status, outcome
    await _assert_moved(
        accounts, outcome, request, 400 if status == TransferStatus.COMPLETED else 0
    )
    if interference == "void":
        handle = client.get_workflow_handle(workflow_id(request.transfer_id))
        await record_history(handle, "pending_lost_capture_voided")


@pytest.mark.usefixtures("worker")
async def test_a_post_of_another_amount_after_a_lost_capture_is_refused_and_the_first_stands(
    transfers: TransfersClient, client: Client, accounts: Accounts, held: Held
) -> None:
    request = await held(400)
    await LostTask(accounts.ledger, request).capture(300)

    with pytest.raises(IdempotencyConflict, match=r"posted already for 3\.00 USD"):
        await transfers.post(request.transfer_id, 200)
    outcome = await _end(client, request)

    assert outcome.status == TransferStatus.COMPLETED
    assert [(e.kind, e.amount) for e in outcome.entries] == [("capture", 300), ("credit", 300)]
    await _assert_moved(accounts, outcome, request, 300)


@pytest.mark.usefixtures("worker")
async def test_a_post_after_a_lost_release_is_refused_and_nothing_moves(
    transfers: TransfersClient, client: Client, accounts: Accounts, held: Held
) -> None:
    request = await held(400)
    await LostTask(accounts.ledger, request).release()  # a void whose task was lost

    with pytest.raises(HoldNotActive):
        await transfers.post(request.transfer_id)
    outcome = await _end(client, request)

    assert (outcome.status, outcome.step) == (TransferStatus.FAILED, "capture-refused")
    await _assert_moved(accounts, outcome, request, 0)


@pytest.mark.parametrize(
    ("committed", "interference", "status"),
    [
        (("claim", "hold"), "cancel", TransferStatus.FAILED),
        (("claim", "hold", "capture"), "none", TransferStatus.COMPLETED),
        (("claim", "hold", "capture"), "cancel", TransferStatus.COMPLETED),
        # compensated first (its target was frozen), then the target reopens: still compensated
        (
            ("claim", "hold", "capture", "fence", "refund"),
            "unfreeze target",
            TransferStatus.COMPENSATED,
        ),
    ],
)
async def test_a_rerun_of_a_pending_transfer_ends_as_its_entries_say(
    committed: tuple[str, ...],
    interference: str,
    status: TransferStatus,
    client: Client,
    settings: Settings,
    activities: RecordingActivities,
    transfers: TransfersClient,
    accounts: Accounts,
    pending_for: PendingFor,
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(0, shard=1)
    request = pending_for(source, target, 400)
    if interference == "unfreeze target":
        await accounts.freeze(target)
    await LostTask(accounts.ledger, request).commit(*committed)
    if interference == "unfreeze target":
        await accounts.ledger.set_status(target, AccountStatus.OPEN)

    await transfers.start(request)  # no worker yet: a cancel is in the history before any step
    if interference == "cancel":
        await transfers.cancel(request.transfer_id)
    async with running_worker(client, settings, activities):
        outcome = await _end(client, request)

    assert outcome.status == status, outcome
    await _assert_moved(
        accounts, outcome, request, 400 if status == TransferStatus.COMPLETED else 0
    )


@pytest.mark.usefixtures("worker")
async def test_a_compensated_pending_transfer_run_again_after_its_target_opens_credits_nothing(
    transfers: TransfersClient,
    client: Client,
    settings: Settings,
    accounts: Accounts,
    pending_for: PendingFor,
) -> None:
    """Its credit was refused (no such account: nothing to fence there) and its capture refunded;
    the target opens; a new run of the id finds the captured hold: its release hands back the
    refund, not the capture, so nothing is credited (found by review: 400 made before)."""
    source = await accounts.open(1_000, shard=0)
    target = accounts.id_on(1)  # not opened yet
    request = pending_for(source, target, 400)
    await transfers.submit_pending(request)
    first = await transfers.post(request.transfer_id)
    await accounts.ledger.open_account(target, "USD")

    handle = await client.start_workflow(
        "PendingTransferWorkflow",
        request,
        id=workflow_id(request.transfer_id),
        task_queue=settings.transfers_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        result_type=TransferOutcome,
    )
    again = await asyncio.wait_for(handle.result(), timeout=60)

    assert first.status == again.status == TransferStatus.COMPENSATED
    await _assert_moved(accounts, again, request, 0)
