"""`TransfersClient.retry_refund`, `resolve` and `list(stuck=True)`: an operator's way out of a
stuck refund, on real shards and a real Temporal server. The refund is made to stick as in
test_stuck_refund.py: the source's balance is pushed so near the largest storable one that the
refund would overflow it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from temporalio.client import Client

from shards.errors import InvalidInput
from tests.support.statements import recomputed_balance, statement_pages
from tests.support.stuck_refunds import AMOUNT, BALANCE, NEAR_MAX_DEPOSIT, stuck_refund
from tests.support.workers import Accounts, error_type, record_history
from transfers.client import RefundNotStuck, TransferNotFound, TransfersClient, workflow_id
from workflows.models import PendingTransferRequest, TransferRequest, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")

LIST_WAIT_S = 10.0  # visibility is eventually consistent


async def _listed_as_stuck(transfers: TransfersClient, wanted: set[str], mine: set[str]) -> None:
    """Wait until, of the transfer ids `mine`, exactly `wanted` are listed as stuck."""
    async with asyncio.timeout(LIST_WAIT_S):
        while True:
            listed = {summary.transfer_id for summary in await transfers.list(stuck=True)}
            if listed & mine == wanted:
                return
            await asyncio.sleep(0.3)


async def test_retry_after_the_fix_refunds_the_source_once(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    request = await stuck_refund(transfers, client, accounts, request_for)
    source = request.source_account_id

    refused_again = await transfers.retry_refund(request.transfer_id)  # nothing fixed yet
    await accounts.withdraw(source, NEAR_MAX_DEPOSIT)  # the operator's fix
    outcome = await transfers.retry_refund(request.transfer_id)

    assert (refused_again.status, refused_again.step) == (
        TransferStatus.COMPENSATING,
        "refund-stuck",
    )
    assert error_type(refused_again) == "InvalidAmount"
    assert (outcome.status, outcome.step) == (TransferStatus.COMPENSATED, "refunded")
    for account in (source, request.target_account_id):
        assert await recomputed_balance(accounts.ledger, account) == await accounts.balance(account)
    assert await accounts.balance(source) == BALANCE
    assert await accounts.balance(request.target_account_id) == 0
    await record_history(
        client.get_workflow_handle(workflow_id(request.transfer_id)), "refund_retried"
    )
    [newest, *_] = (await statement_pages(accounts.ledger, source))[0]
    assert (newest.transfer_id, newest.kind, newest.amount, newest.marker) == (
        request.transfer_id,
        "refund",
        AMOUNT,
        False,
    )


async def test_resolve_records_the_marker_and_ends_compensated(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    request = await stuck_refund(transfers, client, accounts, request_for)
    source = request.source_account_id

    with pytest.raises(InvalidInput, match="must say how the refund was settled"):
        await transfers.resolve(request.transfer_id, " \t")
    with pytest.raises(InvalidInput, match="at most 500"):
        await transfers.resolve(request.transfer_id, "x" * 501)
    still = await transfers.status(request.transfer_id)
    outcome = await transfers.resolve(request.transfer_id, "paid back by wire #42")

    assert still.step == "refund-stuck"
    assert (outcome.status, outcome.step) == (TransferStatus.COMPENSATED, "resolved-by-operator")
    assert outcome.error is not None
    assert outcome.error.message.startswith("paid back by wire #42")
    entries = [entry for page in await statement_pages(accounts.ledger, source) for entry in page]
    mine = [(e.kind, e.amount, e.marker) for e in entries if e.transfer_id == request.transfer_id]
    assert mine == [("refund", AMOUNT, True), ("debit", AMOUNT, False)]
    # the operator paid outside the ledger: the debit stands on the source's shard
    assert await accounts.balance(source) == BALANCE - AMOUNT + NEAR_MAX_DEPOSIT
    assert await recomputed_balance(accounts.ledger, source) == await accounts.balance(source)


async def test_both_refuse_a_completed_a_running_and_an_unknown_transfer(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    new_id: Callable[[str], str],
) -> None:
    source = await accounts.open(BALANCE, shard=0)
    target = await accounts.open(0, shard=1)
    completed = request_for(source, target, AMOUNT)
    assert (await transfers.submit(completed)).status == TransferStatus.COMPLETED
    held = PendingTransferRequest(**request_for(source, target, AMOUNT).model_dump(), timeout_s=600)
    assert (await transfers.submit_pending(held)).status == TransferStatus.HELD
    unknown = new_id("t")

    running = "no refund is stuck: the transfer is HELD (held)"
    with pytest.raises(RefundNotStuck, match=rf"transfer {held.transfer_id}: {re.escape(running)}"):
        await transfers.retry_refund(held.transfer_id)
    with pytest.raises(RefundNotStuck, match=re.escape(running)):
        await transfers.resolve(held.transfer_id, "paid")
    ended = rf"transfer {completed.transfer_id} has ended \(COMPLETED, step completed\): no refund"
    with pytest.raises(RefundNotStuck, match=ended):
        await transfers.retry_refund(completed.transfer_id)
    with pytest.raises(RefundNotStuck, match=ended):
        await transfers.resolve(completed.transfer_id, "paid")
    with pytest.raises(TransferNotFound, match=f"no transfer {unknown}"):
        await transfers.retry_refund(unknown)
    with pytest.raises(TransferNotFound, match=f"no transfer {unknown}"):
        await transfers.resolve(unknown, "paid")

    assert (await transfers.void(held.transfer_id)).status == TransferStatus.VOIDED
    assert await accounts.balance(source) == await recomputed_balance(accounts.ledger, source)
    assert await accounts.balance(source) == BALANCE - AMOUNT


async def test_list_stuck_shows_exactly_the_transfers_whose_refund_waits(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    first = await stuck_refund(transfers, client, accounts, request_for)
    second = await stuck_refund(transfers, client, accounts, request_for)
    source = await accounts.open(BALANCE, shard=0)
    refused = request_for(source, await accounts.open(0, shard=1), AMOUNT)
    await accounts.freeze(refused.target_account_id)  # compensated at once: never stuck
    assert (await transfers.submit(refused)).status == TransferStatus.COMPENSATED
    mine = {first.transfer_id, second.transfer_id, refused.transfer_id}

    await _listed_as_stuck(transfers, {first.transfer_id, second.transfer_id}, mine)
    await transfers.resolve(first.transfer_id, "paid back by hand")
    await _listed_as_stuck(transfers, {second.transfer_id}, mine)
    await transfers.retry_refund(second.transfer_id)  # refused again: stuck again
    await _listed_as_stuck(transfers, {second.transfer_id}, mine)

    listed = await transfers.list(stuck=True)
    assert {s.status for s in listed if s.transfer_id in mine} == {TransferStatus.COMPENSATING}
