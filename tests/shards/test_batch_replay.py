"""A batch re-run after a lost task (its transaction committed, its caller never heard) decides
what the lost run decided, however the accounts changed in between: nothing applies twice."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from shards.errors import AccountNotOpen, InsufficientFunds
from shards.ledger import Ledger
from shards.records import BatchStep, StepResult
from shards.schema import AccountStatus
from tests.shards.support import NewId, entry_count, open_funded
from tests.shards.test_batch_steps import step

pytestmark = pytest.mark.lost_tasks


def as_replayed(outcomes: Sequence[StepResult | Exception]) -> list[object]:
    """The outcomes as a re-run must hand them back: applied steps replayed, refusals by type."""
    return [o._replace(replayed=True) if isinstance(o, StepResult) else type(o) for o in outcomes]


def outcome_types(outcomes: Sequence[StepResult | Exception]) -> list[object]:
    return [o if isinstance(o, StepResult) else type(o) for o in outcomes]


async def balances(ledger: Ledger, accounts: Sequence[str]) -> list[int]:
    return [(await ledger.get_account(account)).balance for account in accounts]


async def test_rerun_debits_replay_after_draining_freezing_and_closing(
    ledger: Ledger, new_id: NewId
) -> None:
    drained = await open_funded(ledger, new_id("acc"), 100)
    frozen = await open_funded(ledger, new_id("acc"), 100)
    closed = await open_funded(ledger, new_id("acc"), 20)
    steps = [
        step(new_id("t"), drained, 30),
        step(new_id("t"), frozen, 60),
        step(new_id("t"), drained, 50),
        step(new_id("t"), closed, 20),
        step(new_id("t"), frozen, 50),  # 40 left: refused
    ]
    lost = await ledger.debit_batch(steps)
    assert [type(o) for o in lost] == [StepResult] * 4 + [InsufficientFunds]
    await ledger.withdraw(new_id("w"), drained, 20, "USD")
    await ledger.set_status(frozen, AccountStatus.FROZEN)
    await ledger.set_status(closed, AccountStatus.CLOSED)
    after_interference = await balances(ledger, [drained, frozen, closed])
    entries_before = [await entry_count(ledger.router, transfer_id=s.transfer_id) for s in steps]

    rerun = await ledger.debit_batch(steps)

    # applied steps replay; a refusal wrote nothing and is decided afresh, as a single step's is
    assert outcome_types(rerun[:4]) == as_replayed(lost[:4])
    assert isinstance(rerun[4], AccountNotOpen)
    assert await balances(ledger, [drained, frozen, closed]) == after_interference == [0, 40, 0]
    assert [
        await entry_count(ledger.router, transfer_id=s.transfer_id) for s in steps
    ] == entries_before
    assert entries_before == [1, 1, 1, 1, 0]


async def test_rerun_credits_fences_and_refunds_replay_after_the_accounts_changed(
    ledger: Ledger, new_id: NewId
) -> None:
    source = await open_funded(ledger, new_id("acc"), 100)
    target = await open_funded(ledger, new_id("acc"), 0)
    credited, fenced = new_id("t"), new_id("t")
    debits = [step(credited, source, 10), step(fenced, source, 20)]
    await ledger.debit_batch(debits)

    def on(account: str, debit: BatchStep) -> BatchStep:
        return debit._replace(account_id=account)

    batches = [
        (ledger.credit_batch, [on(target, debits[0])]),
        (ledger.fence_credit_batch, [on(target, debits[1]), on(target, debits[0])]),
        (ledger.refund_batch, [debits[1]]),
    ]
    lost = [await run(steps) for run, steps in batches]
    # the target drained and closed, the source emptied and frozen
    await ledger.withdraw(new_id("w"), target, 10, "USD")
    await ledger.set_status(target, AccountStatus.CLOSED)
    await ledger.withdraw(new_id("w"), source, 90, "USD")
    await ledger.set_status(source, AccountStatus.FROZEN)

    rerun = [await run(steps) for run, steps in batches]

    assert [outcome_types(o) for o in rerun] == [
        as_replayed(lost[0]),
        # the fence found the marker it wrote, and the credit the lost run had found already
        as_replayed(lost[1]),
        as_replayed(lost[2]),
    ]
    assert [o.marker for o in lost[1] if isinstance(o, StepResult)] == [True, False]
    assert await balances(ledger, [source, target]) == [0, 0]
    assert await entry_count(ledger.router, transfer_id=fenced) == 3  # debit, marker, refund
