"""Infrastructure failures are retried, and a retry of a committed step replays it."""

from __future__ import annotations

from collections.abc import Callable

from temporalio import activity
from temporalio.client import Client

from activities.ledger import LedgerActivities
from activities.models import StepRequest
from tests.support.workers import (
    Accounts,
    RecordingActivities,
    running_worker,
    wait_for_failure,
)
from transfers.client import TransfersClient
from transfers.settings import Settings
from workflows.models import AppliedEntry, TransferRequest, TransferStatus


class AnswerLostAfterCommit(LedgerActivities):
    """The first credit commits, then its answer is lost, as when a connection drops."""

    lost = False

    @activity.defn(name="credit")
    async def credit(self, request: StepRequest) -> AppliedEntry:
        entry = await super().credit(request)
        if not self.lost:
            self.lost = True
            raise ConnectionResetError("connection lost after the commit")
        return entry


async def test_credit_that_fails_after_its_commit_is_applied_once(
    transfers: TransfersClient,
    client: Client,
    settings: Settings,
    activities: LedgerActivities,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(0, shard=1)
    flaky = AnswerLostAfterCommit(activities.ledger)

    async with running_worker(client, settings, flaky):
        outcome = await transfers.submit(request_for(source, target, 300))

    assert flaky.lost
    assert outcome.status == TransferStatus.COMPLETED
    assert [(e.kind, e.replayed) for e in outcome.entries] == [("debit", False), ("credit", True)]
    assert (await accounts.balance(source), await accounts.balance(target)) == (700, 300)


async def test_a_shard_that_comes_back_lets_the_transfer_finish(
    transfers: TransfersClient,
    client: Client,
    settings: Settings,
    activities: RecordingActivities,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """A row lock held past the lock timeout is an infrastructure error: retried, never
    compensated."""
    source = await accounts.open(1_000, shard=2)
    target = await accounts.open(0, shard=0)
    request = request_for(source, target, 300)

    async with running_worker(client, settings, activities):
        async with accounts.row_locked(target):
            await transfers.submit(request, wait=False)
            last_failure = await wait_for_failure(activities, "credit")
        outcome = await transfers.submit(request)

    assert last_failure == "LockTimeout"
    assert outcome.status == TransferStatus.COMPLETED
    assert (await accounts.balance(source), await accounts.balance(target)) == (700, 300)
