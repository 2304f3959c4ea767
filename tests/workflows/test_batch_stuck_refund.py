"""A batch's refund that is refused: tried again every minute on its own, and sooner when an
operator says so (`retry_refund`), or recorded as settled by hand (`resolve`), one transfer of
the batch at a time, as for a single transfer. The refund is made to stick as in
test_stuck_refund.py: the source is pushed so near the largest storable balance that the
refund would overflow it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from temporalio.client import Client

from shards.errors import InvalidInput
from tests.support.statements import recomputed_balance, statement_pages
from tests.support.stuck_refunds import (
    AMOUNT,
    BALANCE,
    NEAR_MAX_DEPOSIT,
    stuck_batch,
    until_batch_step,
)
from tests.support.workers import Accounts, error_type, record_history
from transfers.client import RefundNotStuck, TransfersClient
from workflows.batch_models import batch_workflow_id
from workflows.models import TransferRequest, TransferStatus
from workflows.search_attributes import REFUND_IS_STUCK

pytestmark = pytest.mark.usefixtures("worker")

NOTE = "paid back by wire 42"
LIST_WAIT_S = 10.0


async def _listed_as_stuck(transfers: TransfersClient, mine: set[str]) -> set[str]:
    """Of the transfer ids `mine`, those `list(stuck=True)` lists, once it lists any (the
    batch's `RefundStuck` reaches visibility a moment after it is set)."""
    async with asyncio.timeout(LIST_WAIT_S):
        while True:
            listed = {summary.transfer_id for summary in await transfers.list(stuck=True)}
            if listed & mine:
                return listed & mine
            await asyncio.sleep(0.3)


async def _refund_stuck_shown(client: Client, batch_id: str) -> bool | None:
    description = await client.get_workflow_handle(batch_workflow_id(batch_id)).describe()
    return description.typed_search_attributes.get(REFUND_IS_STUCK)


async def test_an_operator_resolves_one_stuck_refund_and_retries_another(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    batch_id, [paid, fixed], [done] = await stuck_batch(
        transfers, accounts, request_for, stuck=2, completing=1
    )
    stuck_shown = await _refund_stuck_shown(client, batch_id)
    listed = await _listed_as_stuck(
        transfers, {paid.transfer_id, fixed.transfer_id, done.transfer_id}
    )

    with pytest.raises(RefundNotStuck, match=r"in batch .*: no refund is stuck: .*COMPLETED"):
        await transfers.retry_refund(done.transfer_id)
    with pytest.raises(InvalidInput, match="empty"):
        await transfers.resolve(paid.transfer_id, " ")
    resolved = await transfers.resolve(paid.transfer_id, NOTE)
    with pytest.raises(RefundNotStuck, match="no refund is stuck: the transfer is COMPENSATED"):
        await transfers.resolve(paid.transfer_id, NOTE)  # decided once, never twice
    # the resolve's wake-up tried the other refund again at once: it waits once more
    await until_batch_step(transfers, batch_id, fixed.transfer_id, "refund-stuck")
    refused_again = await transfers.retry_refund(fixed.transfer_id)  # nothing fixed yet
    still_shown = await _refund_stuck_shown(client, batch_id)
    await accounts.withdraw(fixed.source_account_id, NEAR_MAX_DEPOSIT)  # the operator's fix
    retried = await transfers.retry_refund(fixed.transfer_id)
    outcome = await transfers.batch_outcome(batch_id)

    assert stuck_shown is True
    assert listed == {paid.transfer_id, fixed.transfer_id}
    assert (resolved.status, resolved.step) == (TransferStatus.COMPENSATED, "resolved-by-operator")
    assert resolved.error is not None
    assert resolved.error.type == "ResolvedByOperator"
    assert resolved.error.message.startswith(f"{NOTE} (the refund was refused: InvalidAmount)")
    assert (refused_again.step, error_type(refused_again)) == ("refund-stuck", "InvalidAmount")
    assert still_shown is True  # one refund still waited
    assert (retried.status, retried.step) == (TransferStatus.COMPENSATED, "refunded")
    assert outcome.counts == {"COMPLETED": 1, "FAILED": 0, "COMPENSATED": 2}
    assert await _refund_stuck_shown(client, batch_id) is None
    with pytest.raises(RefundNotStuck, match=r"is COMPENSATED \(refunded\): no refund is stuck"):
        await transfers.retry_refund(fixed.transfer_id)
    # the entries: no refund landed where the operator paid by hand, a marker stops any later
    [paid_refund] = [
        entry
        for page in await statement_pages(accounts.ledger, paid.source_account_id)
        for entry in page
        if entry.kind == "refund"
    ]
    assert paid_refund.marker
    balances = {
        paid.source_account_id: BALANCE - AMOUNT + NEAR_MAX_DEPOSIT,
        fixed.source_account_id: BALANCE,
        done.source_account_id: BALANCE - AMOUNT,
        done.target_account_id: AMOUNT,
        paid.target_account_id: 0,
    }
    for account, expected in balances.items():
        assert await accounts.balance(account) == expected
        assert await recomputed_balance(accounts.ledger, account) == expected
    await record_history(
        client.get_workflow_handle(batch_workflow_id(batch_id)), "batch_refund_resolved"
    )


async def test_a_request_run_again_after_a_resolve_refunds_nothing(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """The shards' entries record the operator's decision: the same request, run again as a
    single transfer or in another batch, finds the refund marker and pays nothing back."""
    batch_id, [paid], _ = await stuck_batch(transfers, accounts, request_for, stuck=1)
    await transfers.resolve(paid.transfer_id, NOTE)
    await transfers.batch_outcome(batch_id)
    after_resolve = await accounts.balance(paid.source_account_id)

    single = await transfers.submit(paid)
    again = await transfers.submit_batch([paid], batch_id=f"{batch_id}-again")

    assert after_resolve == BALANCE - AMOUNT + NEAR_MAX_DEPOSIT
    assert single.status != TransferStatus.COMPLETED
    assert [t.status for t in again.transfers] != [TransferStatus.COMPLETED]
    # a run after the end: its debit step is refused, the request having been compensated
    assert error_type(single) == "AlreadyCompensated"
    assert [t.error.type if t.error else None for t in again.transfers] == ["AlreadyCompensated"]
    assert await accounts.balance(paid.source_account_id) == after_resolve
    assert await recomputed_balance(accounts.ledger, paid.source_account_id) == after_resolve
    assert await accounts.balance(paid.target_account_id) == 0
