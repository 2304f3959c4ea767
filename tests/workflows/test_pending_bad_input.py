"""Bad inputs to a pending transfer are refused with a clear reason and change nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from shards.errors import HoldNotActive, InvalidAmount
from shards.validation import MAX_HOLD_TTL_S
from tests.support.pending_holds import Held, PendingFor
from tests.support.workers import Accounts
from transfers.client import TransferNotFound, TransfersClient, workflow_id
from workflows.models import TransferRequest, TransferStatus

pytestmark = [pytest.mark.usefixtures("worker"), pytest.mark.bad_input, pytest.mark.pending]


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (0, r"cannot post 0\.00 USD: the amount must be above 0 and at most the hold's 4\.00 USD"),
        (-100, r"cannot post -1\.00 USD"),
        (401, r"cannot post 4\.01 USD"),
    ],
)
async def test_post_amount_outside_the_hold_is_refused(
    transfers: TransfersClient, accounts: Accounts, held: Held, amount: int, message: str
) -> None:
    request = await held(400)

    with pytest.raises(InvalidAmount, match=message):
        await transfers.post(request.transfer_id, amount)

    still = await transfers.status(request.transfer_id)
    assert (still.status, still.entries) == (TransferStatus.HELD, ())
    assert (await accounts.ledger.get_account(request.source_account_id)).available == 600
    assert (await transfers.post(request.transfer_id, 400)).status == TransferStatus.COMPLETED


@pytest.mark.parametrize("timeout_s", [-1, 0, MAX_HOLD_TTL_S + 1, float("inf")])
def test_timeout_out_of_range_is_refused(pending_for: PendingFor, timeout_s: float) -> None:
    with pytest.raises(ValidationError, match="timeout_s"):
        pending_for("acc-1", "acc-2", 100, timeout_s)


async def test_workflow_refuses_a_timeout_that_bypassed_the_client(
    client: Client,
    worker: Worker,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=2)
    request = request_for(source, await accounts.open(0, shard=0), 100)

    with pytest.raises(WorkflowFailureError) as failure:
        await client.execute_workflow(
            "PendingTransferWorkflow",
            {**request.model_dump(), "timeout_s": -5},
            id=workflow_id(request.transfer_id),
            task_queue=worker.task_queue,
        )

    assert "timeout_s" in str(failure.value.cause)
    assert (await accounts.ledger.get_account(source)).available == 1_000


async def test_a_hold_resolves_once(
    transfers: TransfersClient, accounts: Accounts, held: Held
) -> None:
    request = await held(400, shards=(1, 2))
    await transfers.void(request.transfer_id)

    with pytest.raises(HoldNotActive, match=r"is VOIDED \(voided\): its hold was voided already"):
        await transfers.post(request.transfer_id)
    with pytest.raises(HoldNotActive, match="VOIDED"):
        await transfers.void(request.transfer_id)
    assert (await accounts.ledger.get_account(request.source_account_id)).available == 1_000


async def test_only_pending_transfers_can_be_posted(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    source = await accounts.open(1_000, shard=0)
    plain = request_for(source, await accounts.open(0, shard=1), 100)
    await transfers.submit(plain)

    with pytest.raises(HoldNotActive, match="is not pending"):
        await transfers.post(plain.transfer_id)
    with pytest.raises(TransferNotFound):
        await transfers.void("never-submitted")
    assert await accounts.balance(source) == 900
