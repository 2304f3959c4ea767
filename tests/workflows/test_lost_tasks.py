"""A workflow task lost after its steps committed, then something changed before the re-run.

Each case commits on the shards what the lost task had (tests/support/lost_tasks.py), interferes
(a cancel, an account frozen, unfrozen or closed), then lets the workflow run from a history
without those steps. The re-run must end as the entries say, with every balance recomputed from
the outcome, nothing in flight and nothing held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from temporalio.client import Client

from shards.schema import AccountStatus
from tests.support.lost_tasks import LostTask, assert_settled, run_again
from tests.support.workers import (
    Accounts,
    RecordingActivities,
    record_history,
    running_worker,
)
from transfers.client import TransfersClient, workflow_id
from transfers.settings import Settings
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.lost_tasks

AMOUNT = 400
OPENING = 1_000


@dataclass(frozen=True)
class Case:
    committed: tuple[str, ...]  # the steps the lost task committed, in order
    interference: str  # none, cancel, or "<freeze|unfreeze|close> <source|target>"
    status: TransferStatus
    same_shard: bool = False
    target_frozen_first: bool = False  # while the lost task ran: its credit was refused

    @property
    def moved(self) -> int:
        return AMOUNT if self.status == TransferStatus.COMPLETED else 0


CASES = {
    "claim, none": Case(("claim",), "none", TransferStatus.COMPLETED),
    "claim, cancel": Case(("claim",), "cancel", TransferStatus.FAILED),
    "debit, none": Case(("claim", "debit"), "none", TransferStatus.COMPLETED),
    # issue #11 case 1: was FAILED with the debit kept (400 lost)
    "debit, cancel": Case(("claim", "debit"), "cancel", TransferStatus.COMPENSATED),
    "debit, freeze source": Case(("claim", "debit"), "freeze source", TransferStatus.COMPLETED),
    "debit, freeze target": Case(("claim", "debit"), "freeze target", TransferStatus.COMPENSATED),
    "debit, close target": Case(("claim", "debit"), "close target", TransferStatus.COMPENSATED),
    # issue #11 case 2: was COMPENSATED with the credit kept (400 made)
    "credit, cancel": Case(("claim", "debit", "credit"), "cancel", TransferStatus.COMPLETED),
    "credit, freeze target": Case(
        ("claim", "debit", "credit"), "freeze target", TransferStatus.COMPLETED
    ),
    "credit, close source": Case(
        ("claim", "debit", "credit"), "close source", TransferStatus.COMPLETED
    ),
    "fence, none": Case(("claim", "debit", "fence"), "none", TransferStatus.COMPENSATED),
    "fence, cancel": Case(("claim", "debit", "fence"), "cancel", TransferStatus.COMPENSATED),
    # issue #11 case 3: was COMPLETED over the refund (400 made)
    "refund, unfreeze target": Case(
        ("claim", "debit", "fence", "refund"),
        "unfreeze target",
        TransferStatus.COMPENSATED,
        target_frozen_first=True,
    ),
    "refund, cancel": Case(
        ("claim", "debit", "fence", "refund"),
        "cancel",
        TransferStatus.COMPENSATED,
        target_frozen_first=True,
    ),
    "refused debit, funds arrive": Case(
        ("claim", "fence", "refund"), "fund source", TransferStatus.FAILED
    ),
    "within shard, none": Case(
        ("claim", "within_shard"), "none", TransferStatus.COMPLETED, same_shard=True
    ),
    "within shard, cancel": Case(
        ("claim", "within_shard"), "cancel", TransferStatus.COMPLETED, same_shard=True
    ),
    "within shard, freeze target": Case(
        ("claim", "within_shard"), "freeze target", TransferStatus.COMPLETED, same_shard=True
    ),
    "within shard fenced, none": Case(
        ("claim", "fence", "refund"), "none", TransferStatus.FAILED, same_shard=True
    ),
    "within shard fenced, cancel": Case(
        ("claim", "fence", "refund"), "cancel", TransferStatus.FAILED, same_shard=True
    ),
    # a batch runs a same-shard pair as its debit, then its credit: lost between the two
    "same-shard debit, none": Case(
        ("claim", "debit"), "none", TransferStatus.COMPLETED, same_shard=True
    ),
    "same-shard debit, freeze target": Case(
        ("claim", "debit"), "freeze target", TransferStatus.COMPENSATED, same_shard=True
    ),
    "same-shard debit fenced, none": Case(
        ("claim", "debit", "fence"), "none", TransferStatus.COMPENSATED, same_shard=True
    ),
}


async def _interfere(accounts: Accounts, interference: str, source: str, target: str) -> None:
    if interference in ("none", "cancel"):
        return
    verb, side = interference.split()
    account = source if side == "source" else target
    if verb == "fund":
        await accounts.deposit(account, OPENING)
        return
    if verb == "close":  # closing needs an empty account: empty it first, as its owner would
        balance = await accounts.balance(account)
        if balance:
            await accounts.withdraw(account, balance)
    status = {"freeze": AccountStatus.FROZEN, "unfreeze": AccountStatus.OPEN}.get(
        verb, AccountStatus.CLOSED
    )
    await accounts.ledger.set_status(account, status)


@pytest.mark.parametrize("name", list(CASES))
async def test_a_rerun_after_a_lost_task_ends_as_the_entries_say(
    name: str,
    client: Client,
    settings: Settings,
    activities: RecordingActivities,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    case = CASES[name]
    source = await accounts.open(OPENING if case.interference != "fund source" else 0, shard=0)
    target = await accounts.open(0, shard=0 if case.same_shard else 1)
    request = request_for(source, target, AMOUNT)
    lost = LostTask(accounts.ledger, request)
    if case.target_frozen_first:
        await accounts.freeze(target)
    await lost.commit(*case.committed)
    await _interfere(accounts, case.interference, source, target)
    opening = {
        source: await accounts.balance(source) + _taken(case),
        target: await accounts.balance(target) - _credited(case),
    }

    await transfers.start(request)  # no worker yet: a cancel is in the history before any step
    if case.interference == "cancel":
        assert await transfers.cancel(request.transfer_id) is True
    async with running_worker(client, settings, activities):
        outcome = await transfers.submit(request)

    assert outcome.status == case.status, outcome
    await assert_settled(
        accounts.ledger,
        outcome,
        opening=opening,
        balances={source: opening[source] - case.moved, target: opening[target] + case.moved},
    )
    if name in RECORDED:
        handle = client.get_workflow_handle(workflow_id(request.transfer_id))
        await record_history(handle, RECORDED[name])


RECORDED = {"debit, cancel": "lost_debit_cancelled", "refund, unfreeze target": "lost_refund"}


def _taken(case: Case) -> int:
    """What the committed steps took from the source and did not give back."""
    steps = set(case.committed)
    took = bool(steps & {"debit", "within_shard"})
    return AMOUNT if took and "refund" not in steps else 0


def _credited(case: Case) -> int:
    return AMOUNT if set(case.committed) & {"credit", "within_shard"} else 0


REUSED = "id_reused_{status}"  # the recorded history of a new run of the id, by its end


@pytest.mark.parametrize("first_end", ["completed", "compensated"])
async def test_a_new_run_of_an_id_with_other_fields_moves_nothing(
    first_end: str,
    client: Client,
    settings: Settings,
    activities: RecordingActivities,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """Issue #11 case 5: the same id with another target, on a third shard, after the first run
    ended: the claim refuses it before any step; before the claim it credited 400 more."""
    source = await accounts.open(OPENING, shard=0)
    target = await accounts.open(0, shard=1)
    other_target = await accounts.open(0, shard=2)
    request = request_for(source, target, AMOUNT)
    if first_end == "compensated":
        await accounts.freeze(target)
    async with running_worker(client, settings, activities):
        first = await transfers.submit(request)
        other = request.model_copy(update={"target_account_id": other_target})
        second = await run_again(client, settings, other, REUSED)
        same = await run_again(client, settings, request, REUSED)  # the same fields: the same end

    expected = TransferStatus.COMPLETED if first_end == "completed" else TransferStatus.COMPENSATED
    assert first.status == same.status == expected
    assert second.status == TransferStatus.FAILED, second
    assert second.error is not None
    assert second.error.type == "IdempotencyConflict"
    moved = AMOUNT if expected == TransferStatus.COMPLETED else 0
    assert await accounts.balance(other_target) == 0
    await assert_settled(
        accounts.ledger,
        same,
        opening={source: OPENING, target: 0, other_target: 0},
        balances={source: OPENING - moved, target: moved, other_target: 0},
    )
