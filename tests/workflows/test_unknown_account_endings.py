"""A transfer that ends FAILED while its source account does not exist leaves no entry there (no
account row to hold the refund marker): its claim records the ending instead. Once the accounts
are opened and funded, a new run of the same request (after Temporal's retention forgot the first
workflow, or in another batch) must end as the first did, FAILED with its error, moving nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from temporalio.client import Client

from shards.errors import AccountNotFound
from tests.support.lost_tasks import assert_settled, entries_of, run_again
from tests.support.pending_holds import PendingFor
from tests.support.workers import Accounts, record_history
from transfers.client import TransfersClient, workflow_id
from transfers.settings import Settings
from workflows.batch_models import batch_workflow_id
from workflows.models import (
    TransferOutcome,
    TransferRequest,
    TransferStatus,
    TransferStep,
)

pytestmark = [pytest.mark.lost_tasks, pytest.mark.usefixtures("worker")]

AMOUNT = 400


def _failed_unknown(outcome: TransferOutcome, account_id: str) -> None:
    assert outcome.status == TransferStatus.FAILED, outcome
    assert outcome.error is not None
    assert outcome.error.type == AccountNotFound.__name__, outcome
    assert account_id in outcome.error.message


async def _nothing_moved(
    accounts: Accounts, outcome: TransferOutcome, source: str, target: str
) -> None:
    """The source keeps the 1 000 it was funded with once opened; the audit is clean."""
    await assert_settled(
        accounts.ledger,
        outcome,
        opening={source: 1_000, target: 0},
        balances={source: 1_000, target: 0},
    )


async def _open(accounts: Accounts, account_id: str, balance: int) -> None:
    await accounts.ledger.open_account(account_id, "USD")
    if balance:
        await accounts.deposit(account_id, balance)


@pytest.mark.parametrize(
    "layout",
    ["neither exists", "target exists", "neither exists, one shard", "target exists, one shard"],
)
async def test_a_single_transfer_failed_for_an_unknown_source_stays_failed_when_run_again(
    layout: str,
    client: Client,
    settings: Settings,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    one_shard = layout.endswith("one shard")
    source, target = accounts.id_on(0), accounts.id_on(0 if one_shard else 1)
    if layout.startswith("target exists"):
        await _open(accounts, target, 0)
    request = request_for(source, target, AMOUNT)

    first = await transfers.submit(request)
    _failed_unknown(first, source)
    recorded = layout == "neither exists"  # histories of the claim-records-ending patch
    if recorded:
        await record_history(
            client.get_workflow_handle(workflow_id(request.transfer_id)), "ended_on_claim_failed"
        )

    await _open(accounts, source, 1_000)
    if not layout.startswith("target exists"):
        await _open(accounts, target, 0)
    again = await run_again(client, settings, request, "ended_on_claim_rerun" if recorded else None)

    # the same end, the first run's error; not COMPLETED (money moved) nor COMPENSATED
    _failed_unknown(again, source)
    assert again.step == TransferStep.REFUSED
    await _nothing_moved(accounts, again, source, target)
    # its ending is on the shards now as markers too: a third run decides the same
    kinds = sorted(row.kind for row in await entries_of(accounts.ledger, request.transfer_id))
    assert kinds == ["credit", "refund"], kinds
    third = await transfers.submit_batch([request])
    assert third.transfers[0].status == TransferStatus.FAILED, third
    if recorded:
        handle = client.get_workflow_handle(batch_workflow_id(third.batch_id))
        await record_history(handle, "batch_ended_on_claim_rerun")


async def test_a_pending_transfer_refused_for_an_unknown_source_holds_nothing_when_run_again(
    client: Client,
    settings: Settings,
    transfers: TransfersClient,
    accounts: Accounts,
    pending_for: PendingFor,
) -> None:
    source, target = accounts.id_on(0), accounts.id_on(1)
    request = pending_for(source, target, AMOUNT)

    first = await transfers.submit_pending(request)
    _failed_unknown(first, source)
    assert first.step == TransferStep.HOLD_REFUSED
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))
    await handle.result()
    await record_history(handle, "pending_ended_on_claim")

    await _open(accounts, source, 1_000)
    await _open(accounts, target, 0)
    again = await run_again(client, settings, request)

    _failed_unknown(again, source)  # not HELD: no hold to post
    assert (await accounts.ledger.get_account(source)).held == 0
    await _nothing_moved(accounts, again, source, target)


async def test_a_batch_transfer_failed_for_an_unknown_source_run_again_as_a_single_transfer(
    client: Client,
    settings: Settings,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """The milder variant: the target exists, so the first run fenced its credit; a re-run
    debited and refunded (COMPENSATED) where the first run said FAILED."""
    source, target = accounts.id_on(0), await accounts.open(0, shard=1)
    request = request_for(source, target, AMOUNT)
    first = await transfers.submit_batch([request])
    _failed_unknown(first.transfers[0], source)
    await record_history(
        client.get_workflow_handle(batch_workflow_id(first.batch_id)), "batch_ended_on_claim"
    )

    await _open(accounts, source, 1_000)
    again = await run_again(client, settings, request)

    _failed_unknown(again, source)
    await _nothing_moved(accounts, again, source, target)


async def test_a_transfer_of_existing_accounts_ends_as_before(
    client: Client,
    settings: Settings,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """Refused for its funds: the refund marker on the source records the end, the claim
    records nothing, and a new run ends at the debit as before."""
    source, target = await accounts.open(100, shard=0), await accounts.open(0, shard=1)
    request = request_for(source, target, AMOUNT)
    first = await transfers.submit(request)
    await accounts.deposit(source, 1_000)
    again = await run_again(client, settings, request)

    for outcome in (first, again):
        assert outcome.status == TransferStatus.FAILED, outcome
        assert outcome.step == TransferStep.DEBIT_REFUSED
    assert first.error is not None
    assert first.error.type == "InsufficientFunds"
    assert again.error is not None
    assert again.error.type == "AlreadyCompensated"
    assert await accounts.balance(source) == 1_100
