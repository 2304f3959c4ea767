"""The saga's outcomes on real shards: completed, refused, compensated, same shard."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from tests.support.workers import Accounts, error_type, record_history, steps_in_history
from transfers.client import TransfersClient, workflow_id
from workflows.models import TransferRequest, TransferStatus
from workflows.transfer import TransferWorkflow

pytestmark = pytest.mark.usefixtures("worker")


async def test_cross_shard_transfer_moves_the_money(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(10_000, shard=0)
    target = await accounts.open(500, shard=1)
    request = request_for(source, target, 1_234)

    outcome = await transfers.submit(request)

    assert (outcome.status, outcome.step, outcome.error) == (
        TransferStatus.COMPLETED,
        "completed",
        None,
    )
    assert [(e.kind, e.account_id, e.amount) for e in outcome.entries] == [
        ("debit", source, 1_234),
        ("credit", target, 1_234),
    ]
    assert (await accounts.balance(source), await accounts.balance(target)) == (8_766, 1_734)
    await record_history(client.get_workflow_handle(workflow_id(request.transfer_id)), "completed")


async def test_insufficient_funds_fails_and_moves_nothing(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(100, shard=0)
    target = await accounts.open(0, shard=1)
    request = request_for(source, target, 101)

    outcome = await transfers.submit(request)

    assert (outcome.status, outcome.step) == (TransferStatus.FAILED, "debit-refused")
    # the marker that refuses a late debit, or a resubmission of this id
    assert [(e.kind, e.marker) for e in outcome.entries] == [("refund", True)]
    assert error_type(outcome) == "InsufficientFunds"
    assert (await accounts.balance(source), await accounts.balance(target)) == (100, 0)
    await record_history(client.get_workflow_handle(workflow_id(request.transfer_id)), "failed")


async def test_unknown_target_is_compensated(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=0)
    request = request_for(source, accounts.id_on(2), 300)

    outcome = await transfers.submit(request)

    assert (outcome.status, outcome.step) == (TransferStatus.COMPENSATED, "refunded")
    assert error_type(outcome) == "AccountNotFound"
    assert [(e.kind, e.amount) for e in outcome.entries] == [("debit", 300), ("refund", 300)]
    assert await accounts.balance(source) == 1_000
    await record_history(
        client.get_workflow_handle(workflow_id(request.transfer_id)), "compensated"
    )


async def test_closed_target_is_compensated(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    source = await accounts.open(1_000, shard=1)
    target = await accounts.open(0, shard=2)
    await accounts.close(target)

    outcome = await transfers.submit(request_for(source, target, 250))

    assert outcome.status == TransferStatus.COMPENSATED
    assert error_type(outcome) == "AccountNotOpen"
    assert (await accounts.balance(source), await accounts.balance(target)) == (1_000, 0)


async def test_same_shard_is_one_atomic_activity(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(900, shard=2)
    target = await accounts.open(100, shard=2)
    request = request_for(source, target, 400)

    outcome = await transfers.submit(request)

    assert outcome.status == TransferStatus.COMPLETED
    assert [(e.kind, e.amount) for e in outcome.entries] == [("debit", 400), ("credit", 400)]
    assert (await accounts.balance(source), await accounts.balance(target)) == (500, 500)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))
    assert await steps_in_history(handle) == ["claim", "transfer_within_shard"]
    await record_history(handle, "same_shard")


async def test_same_shard_refusal_moves_nothing(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    source = await accounts.open(900, shard=1)
    target = await accounts.open(0, shard=1)
    await accounts.freeze(target)

    outcome = await transfers.submit(request_for(source, target, 400))

    assert (outcome.status, outcome.step) == (TransferStatus.FAILED, "refused")
    assert [(e.kind, e.marker) for e in outcome.entries] == [("refund", True)]
    assert error_type(outcome) == "AccountNotOpen"
    assert (await accounts.balance(source), await accounts.balance(target)) == (900, 0)


async def test_new_workflow_for_an_old_transfer_moves_no_money(
    transfers: TransfersClient,
    client: Client,
    worker: Worker,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """After retention Temporal forgets the workflow; the shard's unique entries still guard."""
    source = await accounts.open(5_000, shard=0)
    target = await accounts.open(0, shard=1)
    request = request_for(source, target, 2_000)
    assert (await transfers.submit(request)).status == TransferStatus.COMPLETED

    # the same request under another workflow id, as if the first had been forgotten
    again = await client.execute_workflow(
        TransferWorkflow.run,
        request,
        id=f"forgotten-{request.transfer_id}",
        task_queue=worker.task_queue,
    )

    assert again.status == TransferStatus.COMPLETED
    assert [(e.kind, e.replayed) for e in again.entries] == [("debit", True), ("credit", True)]
    assert (await accounts.balance(source), await accounts.balance(target)) == (3_000, 2_000)
