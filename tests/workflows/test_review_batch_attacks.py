"""Review probes of the batch path (issue 16): a run of the same transfer id, batch or single,
must decide what the first run decided, and its status must agree with the entries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.support.batch_settlement import entries_by_transfer
from tests.support.workers import Accounts
from transfers.client import TransfersClient
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")


async def until_entry(accounts: Accounts, transfer_id: str, kind: str) -> None:
    async with asyncio.timeout(30):
        while True:
            rows = await entries_by_transfer(accounts.ledger, [transfer_id])
            if any(row.kind == kind for row in rows.get(transfer_id, [])):
                return
            await asyncio.sleep(0.1)


async def test_single_run_of_a_same_shard_transfer_a_batch_debited_agrees_with_its_entries(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """The batch debits and credits a same-shard pair in two transactions; the single workflow
    of the same request (same id, same fields: its claim passes) between them."""
    source = await accounts.open(1_000, shard=0)
    while True:  # the batch's credits on shard 0 wait on `blocker` first, holding no other row
        target, blocker = accounts.id_on(0), accounts.id_on(0)
        if blocker < target:
            break
    await accounts.ledger.open_account(target, "USD")
    await accounts.ledger.open_account(blocker, "USD")
    other_source = await accounts.open(100, shard=1)
    pair = request_for(source, target, 100)
    into_blocker = request_for(other_source, blocker, 10)

    async with accounts.row_locked(blocker):
        batch_id = await transfers.start_batch([pair, into_blocker])
        await until_entry(accounts, pair.transfer_id, "debit")
        single = await transfers.submit(pair)
    batch = await transfers.batch_outcome(batch_id)

    rows = await entries_by_transfer(accounts.ledger, [pair.transfer_id])
    kinds = sorted(row.kind for row in rows[pair.transfer_id] if not row.marker)
    assert kinds == ["credit", "debit"]  # the money moved, once
    assert batch.transfers[0].status == TransferStatus.COMPLETED
    # the single run of the same request reports the same transfer: it must say COMPLETED too
    assert single.status == TransferStatus.COMPLETED, single


async def test_a_transfer_failed_for_an_unknown_source_stays_failed_when_run_again(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    new_id: Callable[[str], str],
) -> None:
    """FAILED for AccountNotFound writes no marker anywhere (no account row to hang it on); once
    the accounts exist, the same transfer in another batch (the file resubmitted with another
    --batch-size) must not move money."""
    source, target = accounts.id_on(0), accounts.id_on(1)  # neither exists yet
    transfer = request_for(source, target, 100)
    first = await transfers.submit_batch([transfer])
    assert first.transfers[0].status == TransferStatus.FAILED
    assert first.transfers[0].error is not None
    assert first.transfers[0].error.type == "AccountNotFound"

    await accounts.ledger.open_account(source, "USD")
    await accounts.deposit(source, 100)
    await accounts.ledger.open_account(target, "USD")
    again = await transfers.submit_batch([transfer], batch_id=new_id("b"))

    assert await accounts.balance(target) == 0, again
    assert again.transfers[0].status == TransferStatus.FAILED, again
