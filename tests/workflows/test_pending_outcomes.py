"""A pending transfer's outcomes on real shards: posted (whole or part), voided, compensated,
refused, cancelled; and how it shows in the search attributes and the Python API."""

from __future__ import annotations

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from shards.errors import IdempotencyConflict
from tests.support.pending_holds import Held, PendingFor
from tests.support.workers import Accounts, eventually, record_history
from transfers.client import TransfersClient, workflow_id
from workflows.models import PendingTransferRequest, TransferRequest, TransferStatus
from workflows.pending import PendingTransferWorkflow
from workflows.search_attributes import TRANSFER_STATUS

pytestmark = [pytest.mark.usefixtures("worker"), pytest.mark.pending]


async def _funds(accounts: Accounts, request: PendingTransferRequest) -> tuple[int, int, int]:
    """(source balance, source available, target balance)."""
    source = await accounts.ledger.get_account(request.source_account_id)
    return source.balance, source.available, await accounts.balance(request.target_account_id)


async def _record(client: Client, request: PendingTransferRequest, name: str) -> None:
    await record_history(client.get_workflow_handle(workflow_id(request.transfer_id)), name)


async def test_hold_then_post_moves_the_money(
    transfers: TransfersClient, client: Client, accounts: Accounts, held: Held
) -> None:
    request = await held(400)

    while_held = await _funds(accounts, request)
    status = await transfers.status(request.transfer_id)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))
    description = await handle.describe()
    metadata = await handle.query("__temporal_workflow_metadata")
    posted = await transfers.post(request.transfer_id)

    assert while_held == (1_000, 600, 0)
    assert (status.status, status.step, status.expires_at is not None) == ("HELD", "held", True)
    assert description.typed_search_attributes.get(TRANSFER_STATUS) == "HELD"
    summary = f"hold 4.00 USD {request.source_account_id} -> {request.target_account_id}"
    assert await description.static_summary() == summary
    assert "Held until" in metadata.current_details
    assert (posted.status, posted.error) == (TransferStatus.COMPLETED, None)
    assert [(e.kind, e.amount) for e in posted.entries] == [("capture", 400), ("credit", 400)]
    assert await _funds(accounts, request) == (600, 600, 400)
    await _record(client, request, "pending_posted")


async def test_partial_post_captures_part_and_releases_the_rest(
    transfers: TransfersClient, accounts: Accounts, held: Held
) -> None:
    request = await held(400, shards=(1, 2))

    posted = await transfers.post(request.transfer_id, amount=150)

    assert posted.status == TransferStatus.COMPLETED
    assert [(e.kind, e.amount) for e in posted.entries] == [("capture", 150), ("credit", 150)]
    # 1 000 - 150 captured; the other 250 of the hold is available again
    assert await _funds(accounts, request) == (850, 850, 150)


async def test_void_releases_the_hold(
    transfers: TransfersClient, client: Client, accounts: Accounts, held: Held
) -> None:
    request = await held(999, shards=(2, 0))

    voided = await transfers.void(request.transfer_id)

    assert (voided.status, voided.step) == (TransferStatus.VOIDED, "voided")
    assert [(e.kind, e.amount) for e in voided.entries] == [("release", 999)]
    assert await _funds(accounts, request) == (1_000, 1_000, 0)
    await _record(client, request, "pending_voided")


async def test_post_to_a_closed_target_is_compensated(
    transfers: TransfersClient, client: Client, accounts: Accounts, held: Held
) -> None:
    request = await held(300, shards=(0, 2))
    await accounts.close(request.target_account_id)

    outcome = await transfers.post(request.transfer_id, amount=200)

    assert (outcome.status, outcome.step) == (TransferStatus.COMPENSATED, "refunded")
    assert outcome.error is not None
    assert outcome.error.type == "AccountNotOpen"
    assert [(e.kind, e.amount) for e in outcome.entries] == [("capture", 200), ("refund", 200)]
    assert await _funds(accounts, request) == (1_000, 1_000, 0)
    await _record(client, request, "pending_compensated")


async def test_same_shard_takes_the_same_path(
    transfers: TransfersClient, accounts: Accounts, held: Held
) -> None:
    request = await held(500, balance=500, shards=(1, 1))

    posted = await transfers.post(request.transfer_id)

    assert [e.kind for e in posted.entries] == ["capture", "credit"]
    assert await _funds(accounts, request) == (0, 0, 500)


async def test_refused_hold_fails_and_stays_refused(
    transfers: TransfersClient,
    client: Client,
    worker: Worker,
    accounts: Accounts,
    pending_for: PendingFor,
) -> None:
    source = await accounts.open(100, shard=2)
    request = pending_for(source, await accounts.open(0, shard=0), 101)

    outcome = await transfers.submit_pending(request)
    await accounts.deposit(source, 1_000)  # now the hold would fit: the release marker guards
    # the same request under another workflow id, as if Temporal had forgotten the first
    again = await client.execute_workflow(
        PendingTransferWorkflow.run,
        request,
        id=f"forgotten-{request.transfer_id}",
        task_queue=worker.task_queue,
    )

    assert (outcome.status, outcome.step) == (TransferStatus.FAILED, "hold-refused")
    assert outcome.error is not None
    assert outcome.error.type == "InsufficientFunds"
    assert [(e.kind, e.marker) for e in outcome.entries] == [("release", True)]
    assert again.error is not None
    assert (again.status, again.error.type) == (TransferStatus.FAILED, "AlreadyCompensated")
    assert await _funds(accounts, request) == (1_100, 1_100, 0)


async def test_resubmission_finds_the_same_hold(
    transfers: TransfersClient, accounts: Accounts, held: Held
) -> None:
    request = await held(100)
    first = await transfers.status(request.transfer_id)

    again = await transfers.submit_pending(request)
    with pytest.raises(IdempotencyConflict, match=r"timeout_s 60\.0 \(now 120"):
        await transfers.submit_pending(request.model_copy(update={"timeout_s": 120}))
    plain = TransferRequest(**request.model_dump(exclude={"timeout_s"}))
    with pytest.raises(IdempotencyConflict, match="another kind of transfer"):
        await transfers.submit(plain)

    assert again == first
    assert await _funds(accounts, request) == (1_000, 900, 0)


async def test_held_transfers_are_listed_and_cancelling_voids(
    transfers: TransfersClient, accounts: Accounts, held: Held
) -> None:
    request = await held(250, shards=(1, 2))

    async def listed_as_held() -> set[str]:
        return {s.transfer_id for s in await transfers.list(TransferStatus.HELD, limit=1000)}

    await eventually(listed_as_held, request.transfer_id)  # visibility is eventually consistent
    assert await transfers.cancel(request.transfer_id) is True
    outcome = await transfers.submit_pending(request, wait=True)

    assert (outcome.status, outcome.step) == (TransferStatus.VOIDED, "cancelled")
    assert outcome.error is not None
    assert outcome.error.type == "Cancelled"
    assert await _funds(accounts, request) == (1_000, 1_000, 0)
