"""Lost workflow tasks of a batch: what its batched steps committed on the shards, without them in
its history; then something interferes (a cancel, accounts drained, frozen, unfrozen or closed)
before the batch runs. Each transfer must end as the entries say: one the lost run debited is
credited or refunded, never debited twice nor left debited; one it settled stays settled. Then
the batch submitted again, a new run of its id and each transfer as a single TransferWorkflow
all report what the first run reported, and move nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from shards.ledger import Ledger
from shards.records import BatchStep, StepResult
from shards.schema import AccountStatus
from tests.support.batch_settlement import assert_transfers_settled
from tests.support.workers import Accounts, RecordingActivities, record_history, running_worker
from transfers.client import TransfersClient
from transfers.settings import Settings
from workflows.batch_models import BatchOutcome, BatchRequest, batch_workflow_id
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.lost_tasks

AMOUNT = 400
FUNDED = 1_000
C, F, P = TransferStatus.COMPLETED, TransferStatus.FAILED, TransferStatus.COMPENSATED

# What the lost run committed for each transfer, by the batched steps it had run.
COMMITTED = {
    "fresh": (),
    "claimed": ("claim",),
    "debited": ("claim", "debit"),
    "debited within a shard": ("claim", "debit"),
    "credited": ("claim", "debit", "credit"),
    "credited within a shard": ("claim", "debit", "credit"),
    "fenced": ("claim", "debit", "fence"),
    "refunded": ("claim", "debit", "fence", "refund"),  # its target was frozen: credit refused
    "refused, then funded": ("claim", "fence", "refund"),  # its source was empty
}
WITHIN_A_SHARD = {"debited within a shard", "credited within a shard"}

# How each transfer ends, by interference (in COMMITTED's order).
ENDS = {
    "none": (C, C, C, C, C, C, P, P, F),
    "cancel": (F, F, P, P, C, C, P, P, F),
    "freeze targets": (P, P, P, P, C, C, P, P, F),
    "close targets": (P, P, P, P, C, C, P, P, F),
    "freeze sources": (F, F, C, C, C, C, P, P, F),
    "drain sources": (F, F, C, C, C, C, P, P, F),
    "unfreeze targets": (C, C, C, C, C, C, P, P, F),
}


@dataclass
class Scene:
    """One transfer per lost state, each between accounts of its own, and what the test itself
    put into or took out of every account (so balances are recomputed from outcomes alone)."""

    accounts: Accounts
    requests: dict[str, TransferRequest] = field(default_factory=dict)
    held_before: dict[str, int] = field(default_factory=dict)

    async def open(self, balance: int, shard: int) -> str:
        account = await self.accounts.open(balance, shard=shard)
        self.held_before[account] = balance
        return account

    async def move(self, account: str, amount: int) -> None:
        """A deposit (amount > 0) or a withdrawal by the account's owner, not a transfer."""
        if amount > 0:
            await self.accounts.deposit(account, amount)
        elif amount < 0:
            await self.accounts.withdraw(account, -amount)
        self.held_before[account] += amount

    def sides(self, side: str) -> list[str]:
        return [getattr(r, f"{side}_account_id") for r in self.requests.values()]


def _steps(requests: Sequence[TransferRequest], side: str) -> list[BatchStep]:
    """The batched steps as the workflow sends them: on each transfer's `side`, its fingerprint."""
    return [
        BatchStep(
            r.transfer_id, getattr(r, f"{side}_account_id"), r.amount, r.currency, r.fingerprint()
        )
        for r in requests
    ]


async def _commit_lost_run(ledger: Ledger, scene: Scene) -> None:
    """Each batched step the lost run committed, for the transfers that had reached it."""

    def reached(step: str) -> list[TransferRequest]:
        return [r for state, r in scene.requests.items() if step in COMMITTED[state]]

    claims = [(r.transfer_id, r.fingerprint()) for r in reached("claim")]
    assert await ledger.claim_batch(claims) == [None] * len(claims)
    steps = [
        (ledger.debit_batch, "debit", "source"),
        (ledger.credit_batch, "credit", "target"),
        (ledger.fence_credit_batch, "fence", "target"),
        (ledger.refund_batch, "refund", "source"),
    ]
    for run, step, side in steps:
        results = await run(_steps(reached(step), side))
        assert all(isinstance(result, StepResult) for result in results), results


STATUS_SET_BY = {
    "freeze": AccountStatus.FROZEN,
    "unfreeze": AccountStatus.OPEN,
    "close": AccountStatus.CLOSED,
}


async def _interfere(scene: Scene, interference: str) -> None:
    """While the batch has not run: the accounts change (a cancel is asked for later)."""
    if interference in ("none", "cancel"):
        return
    verb, side = interference.split()
    for account in scene.sides(side.removesuffix("s")):
        if verb in ("close", "drain"):  # closing needs an empty account, as its owner would
            await scene.move(account, -(await scene.accounts.balance(account)))
        status = STATUS_SET_BY.get(verb)  # drain: none
        if status is not None:
            await scene.accounts.ledger.set_status(account, status)


async def _new_run(client: Client, settings: Settings, batch: BatchRequest) -> BatchOutcome:
    """A new run of the batch's workflow id, as a foreign client would start it once the first
    run has closed (Temporal's default id-reuse policy allows it)."""
    outcome: BatchOutcome = await client.execute_workflow(
        "TransferBatchWorkflow",
        batch,
        id=batch_workflow_id(batch.batch_id),
        task_queue=settings.transfers_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        result_type=BatchOutcome,
    )
    return outcome


@pytest.mark.parametrize("interference", list(ENDS))
async def test_a_batch_over_its_lost_steps_ends_as_the_entries_say(
    interference: str,
    client: Client,
    settings: Settings,
    activities: RecordingActivities,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    scene = Scene(accounts)
    for state in COMMITTED:
        source = await scene.open(0 if state.startswith("refused") else FUNDED, shard=0)
        target = await scene.open(0, shard=0 if state in WITHIN_A_SHARD else 1)
        scene.requests[state] = request_for(source, target, AMOUNT)
    refunded, refused = scene.requests["refunded"], scene.requests["refused, then funded"]
    await accounts.freeze(refunded.target_account_id)  # the lost run's credit was refused
    await _commit_lost_run(accounts.ledger, scene)
    await scene.move(refused.source_account_id, FUNDED)  # the funds arrive after the lost run
    await _interfere(scene, interference)
    requests = list(scene.requests.values())
    batch = BatchRequest(batch_id=accounts.new_id("b-lost"), transfers=tuple(requests))

    await transfers.start_batch(requests, batch.batch_id)  # no worker yet: nothing runs
    if interference == "cancel":
        assert await transfers.cancel_batch(batch.batch_id) is True
    async with running_worker(client, settings, activities):
        outcome = await transfers.batch_outcome(batch.batch_id)
        if interference == "cancel":  # cancelled before its claims were recorded
            handle = client.get_workflow_handle(batch_workflow_id(batch.batch_id))
            await record_history(handle, "batch_lost_cancelled")
        again = await transfers.submit_batch(requests, batch.batch_id)
        new_run = await _new_run(client, settings, batch)
        singles = [await transfers.submit(request) for request in requests]

    assert dict(zip(COMMITTED, [t.status for t in outcome.transfers], strict=True)) == dict(
        zip(COMMITTED, ENDS[interference], strict=True)
    ), outcome
    assert again == outcome
    assert [t.status for t in new_run.transfers] == list(ENDS[interference])
    assert [t.status for t in singles] == list(ENDS[interference])
    await assert_transfers_settled(
        accounts.ledger, requests, outcome.transfers, held_before=scene.held_before
    )
