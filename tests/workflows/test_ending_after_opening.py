"""The first run's error stays on the claim when the source opens between the run's refund
marker and its `end_claim` (found by the review of migration 0006).

The run: claim, debit refused (AccountNotFound: the source does not exist), fence, refund (a
marker written without the source's row), end_claim. The claim's row is kept locked (as a slow or
unreachable claim shard would) so that end_claim's attempt times out; the source is opened
meanwhile, and end_claim runs again. A marker written before its account was opened keeps no
error (its `balance_after` is NULL), so the claim records the ending all the same: a later run of
the same request ends FAILED at step `refused` with the first run's error. Nothing moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import text
from temporalio.client import Client

from shards.errors import AccountNotFound
from shards.router import ShardRouter
from tests.support.lost_tasks import run_again
from tests.support.workers import Accounts
from transfers.client import TransfersClient
from transfers.settings import Settings
from workflows.models import TransferRequest, TransferStatus, TransferStep

pytestmark = [pytest.mark.lost_tasks, pytest.mark.usefixtures("worker")]

AMOUNT = 400
END_CLAIM_RETRIED_S = 4
# a session waiting for the claim's row (end_claim's update): it waits on the locker's
# transaction id, a lock with no database
WAITING_ON_CLAIM = text(
    "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid' "
    "AND transactionid = pg_current_xact_id()::xid"
)


async def test_a_source_opened_before_end_claim_keeps_the_first_runs_error(
    client: Client,
    settings: Settings,
    router: ShardRouter,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source, target = accounts.id_on(0), await accounts.open(0, shard=1)
    request = request_for(source, target, AMOUNT)
    # the claim, made first (the run's own claim finds it: same request), its row held locked
    await accounts.ledger.claim(request.transfer_id, request.fingerprint())
    claim_shard = router.shard_for(request.transfer_id)
    async with claim_shard.engine.connect() as holder:
        await holder.begin()
        await holder.execute(
            text("SELECT 1 FROM transfer_claims WHERE transfer_id = :id FOR UPDATE"),
            {"id": request.transfer_id},
        )
        first_run = asyncio.create_task(transfers.submit(request))
        async with asyncio.timeout(30):
            while not (await holder.execute(WAITING_ON_CLAIM)).scalar_one():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        # end_claim waits on the claim: the refund marker is committed, the source opens
        await accounts.ledger.open_account(source, "USD")
        await accounts.deposit(source, 1_000)
        # the attempt waiting times out (the tests' lock_timeout is 1 s) and runs again
        await asyncio.sleep(END_CLAIM_RETRIED_S)
        await holder.rollback()
    first = await asyncio.wait_for(first_run, 60)

    assert first.status == TransferStatus.FAILED, first
    assert first.error is not None, first
    assert first.error.type == AccountNotFound.__name__, first

    again = await run_again(client, settings, request)

    assert again.status == TransferStatus.FAILED, again
    assert (again.step, again.error and again.error.type) == (
        TransferStep.REFUSED,
        AccountNotFound.__name__,
    ), again
    assert await accounts.balance(source) == 1_000
