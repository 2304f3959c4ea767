"""Each invariant check catches the breakage it is named for, on a hand-made ledger, and a
healthy ledger passes all of them: a chaos run that reports 0 violations means something."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from shards.audit import AuditReport, CurrencyTotals
from shards.records import AccountView
from transfers.devtools.chaos.accounts import AccountBook
from transfers.devtools.chaos.evidence import (
    OPEN,
    BatchRunFact,
    EntryFact,
    Evidence,
    RunFact,
    TemporalView,
)
from transfers.devtools.chaos.invariants import CHECKS, check_all
from transfers.devtools.chaos.mix import PlannedBatch, PlannedTransfer, TransferKind
from transfers.devtools.chaos.run_record import RunRecord
from transfers.devtools.chaos.workload import BatchRecord, TransferRecord
from workflows.batch_models import BatchOutcome
from workflows.models import TransferOutcome, TransferRequest, TransferStatus


@dataclass
class Ledger:
    """One completed transfer t1 of 100 from a to b, after a deposit of 1000 into a."""

    balances: dict[str, int] = field(default_factory=lambda: {"a": 900, "b": 100})
    entries: list[EntryFact] = field(
        default_factory=lambda: [
            EntryFact("dep-a", "deposit", "a", 1000, False),
            EntryFact("t1", "debit", "a", 100, False),
            EntryFact("t1", "credit", "b", 100, False),
        ]
    )
    records: dict[str, TransferRecord] = field(
        default_factory=lambda: {
            "t1": _record("t1", TransferKind.CROSS_SHARD, TransferStatus.COMPLETED)
        }
    )
    runs: dict[str, list[RunFact]] = field(
        default_factory=lambda: {"t1": [RunFact("run-1", TransferStatus.COMPLETED)]}
    )
    active_holds: list[str] = field(default_factory=list)
    audit: AuditReport = field(default_factory=AuditReport)
    anomalies: list[tuple[str, str]] = field(default_factory=list)
    duplicate_problems: list[tuple[str, str]] = field(default_factory=list)
    batches: dict[str, BatchRecord] = field(default_factory=dict)
    batch_runs: dict[str, list[BatchRunFact]] = field(default_factory=dict)

    def violations(self) -> dict[str, int]:
        book = AccountBook(2, open={"USD": ["a", "b"]}, flow_ids={"dep-a"})
        book.deposited["USD"] = book.opening["a"] = 1000
        accounts = [
            AccountView(account, "USD", balance, 0, balance, "open", 1, 0)
            for account, balance in self.balances.items()
        ]
        temporal = TemporalView(self.runs, self.batch_runs)
        evidence = Evidence(accounts, self.entries, self.active_holds, self.audit, temporal)
        run = RunRecord(book, self.records, self.anomalies, self.duplicate_problems, self.batches)
        return {name: len(found) for name, found in check_all(run, evidence).items() if found}


def _record(transfer_id: str, kind: TransferKind, status: TransferStatus | None) -> TransferRecord:
    request = TransferRequest(
        transfer_id=transfer_id,
        source_account_id="a",
        target_account_id="b",
        amount=100,
        currency="USD",
    )
    outcome = (
        None
        if status is None
        else TransferOutcome(transfer_id=transfer_id, status=status, step="x")
    )
    return TransferRecord(PlannedTransfer(kind, request), outcome)


def _ends(ledger: Ledger, kind: TransferKind, status: TransferStatus, *disturbed_by: str) -> None:
    """t1 was of `kind` and ended in `status`, for its client and for Temporal alike."""
    ledger.records["t1"] = _record("t1", kind, status)
    ledger.records["t1"].disturbed_by.update(disturbed_by)
    ledger.runs["t1"] = [RunFact("run-1", status)]


def _compensated(ledger: Ledger, *disturbed_by: str) -> None:
    """t1 took 100 from a and refunded it."""
    _ends(ledger, TransferKind.CROSS_SHARD, TransferStatus.COMPENSATED, *disturbed_by)
    ledger.entries[2] = EntryFact("t1", "refund", "a", 100, False)
    ledger.balances.update(a=1000, b=0)


def _run_with_other_fields(ledger: Ledger, status: str, error_type: str | None) -> None:
    """The same-id fault started a second run of t1's workflow id; it ended so."""
    ledger.records["t1"].other_runs = 1
    ledger.runs["t1"].append(RunFact("run-2", status, error_type))


def _in_a_batch(ledger: Ledger) -> None:
    """t1 ran in batch b1 with t2, an overdraft it refused; Temporal holds b1's result."""
    ledger.records["t2"] = _record("t2", TransferKind.OVERDRAFT, TransferStatus.FAILED)
    for record in ledger.records.values():
        record.batch_id = "b1"
    planned = PlannedBatch("b1", tuple(record.planned for record in ledger.records.values()))
    outcomes = tuple(record.outcome for record in ledger.records.values() if record.outcome)
    counts = {"COMPLETED": 1, "FAILED": 1, "COMPENSATED": 0}
    ledger.batches["b1"] = BatchRecord(
        planned, "b1", BatchOutcome(batch_id="b1", transfers=outcomes, counts=counts)
    )
    ledger.runs.clear()
    statuses = {"t1": "COMPLETED", "t2": "FAILED"}
    ledger.batch_runs["b1"] = [BatchRunFact("run-b", "COMPLETED", statuses, counts)]


def _batched(breakage: Callable[[Ledger], None]) -> Callable[[Ledger], None]:
    def both(ledger: Ledger) -> None:
        _in_a_batch(ledger)
        breakage(ledger)

    return both


def _echo(ledger: Ledger, status: TransferStatus) -> None:
    """b1 submitted again answered t1 `status`."""
    echoed = TransferOutcome(transfer_id="t1", status=status, step="x")
    batch = ledger.batches["b1"]
    assert batch.outcome is not None
    others = batch.outcome.transfers[1:]
    batch.echoes.append(batch.outcome.model_copy(update={"transfers": (echoed, *others)}))


def _refused_yet_moved(ledger: Ledger) -> None:
    """t2, FAILED in its batch, moved 5 from a to b all the same."""
    _add_entry(ledger, "t2", "debit", "a", 5, False)
    _add_entry(ledger, "t2", "credit", "b", 5, False)
    ledger.balances.update(a=895, b=105)


def _add_entry(ledger: Ledger, *entry: object) -> None:
    ledger.entries.append(EntryFact(*entry))  # type: ignore[arg-type]


def _stranded_capture(ledger: Ledger) -> None:
    """t2, a pending transfer that expired, yet its capture of 50 stands unpaid."""
    ledger.records["t2"] = _record("t2", TransferKind.PENDING_POST, TransferStatus.EXPIRED)
    ledger.runs["t2"] = [RunFact("run-3", TransferStatus.EXPIRED)]
    _add_entry(ledger, "t2", "capture", "a", 50, False)
    ledger.balances.update(a=850)


def _refunded_to_the_target(ledger: Ledger) -> None:
    _compensated(ledger, "cancelled")
    ledger.entries[2] = EntryFact("t1", "refund", "b", 100, False)
    ledger.balances.update(a=900, b=100)


BREAKAGES: dict[str, tuple[Callable[[Ledger], None], set[str]]] = {
    "a cent made from nothing": (
        lambda ledger: ledger.balances.update(b=101),
        {"conservation"},
    ),
    "money moved between accounts behind the outcomes' back": (
        lambda ledger: ledger.balances.update(a=800, b=200),
        {"conservation"},
    ),
    "a balance below zero": (
        lambda ledger: ledger.balances.update(a=-100, b=1100),
        {"non_negative", "conservation"},
    ),
    "credited and refunded": (
        lambda ledger: _add_entry(ledger, "t1", "refund", "a", 100, False),
        {"credited_and_refunded", "moves"},
    ),
    "a second debit on another shard": (
        lambda ledger: _add_entry(ledger, "t1", "debit", "b", 100, False),
        {"moves", "in_flight"},
    ),
    "a credit of another amount": (
        lambda ledger: ledger.entries.__setitem__(2, EntryFact("t1", "credit", "b", 99, False)),
        {"moves", "in_flight"},
    ),
    "an expired transfer's capture never paid out": (
        _stranded_capture,
        {"in_flight", "moves", "conservation"},
    ),
    "entries of a transfer nobody submitted": (
        lambda ledger: _add_entry(ledger, "ghost", "debit", "a", 5, False),
        {"known_transfer", "in_flight"},
    ),
    "a transfer still running": (
        lambda ledger: ledger.records.update(t1=_record("t1", TransferKind.CROSS_SHARD, None)),
        {"final_state"},
    ),
    "Temporal disagrees with the client": (
        lambda ledger: ledger.runs.update(t1=[RunFact("run-1", TransferStatus.FAILED)]),
        {"final_state"},
    ),
    "two runs of one id": (
        lambda ledger: ledger.runs["t1"].append(RunFact("run-2", TransferStatus.COMPLETED)),
        {"single_run"},
    ),
    "a run with other fields that completed": (
        lambda ledger: _run_with_other_fields(ledger, TransferStatus.COMPLETED, None),
        {"same_id"},
    ),
    "a run with other fields refused for another reason": (
        lambda ledger: _run_with_other_fields(ledger, TransferStatus.FAILED, "AlreadyCompensated"),
        {"same_id"},
    ),
    "a run with other fields that never ended": (
        lambda ledger: _run_with_other_fields(ledger, OPEN, None),
        {"same_id"},
    ),
    "an overdraft that completed": (
        lambda ledger: _ends(ledger, TransferKind.OVERDRAFT, TransferStatus.COMPLETED),
        {"expected_outcome"},
    ),
    "a cancelled same-shard transfer that was voided": (
        lambda ledger: _ends(ledger, TransferKind.SAME_SHARD, TransferStatus.VOIDED, "cancelled"),
        {"expected_outcome", "moves", "conservation"},
    ),
    "a failed transfer that moved money": (
        lambda ledger: _ends(ledger, TransferKind.CROSS_SHARD, TransferStatus.FAILED),
        {"moves", "conservation"},
    ),
    "a cancelled transfer whose refund went to its target": (
        _refunded_to_the_target,
        {"moves", "conservation"},
    ),
    "a hold left active": (
        lambda ledger: ledger.active_holds.append("t1"),
        {"holds_released"},
    ),
    "the audit: a balance unlike its entries": (
        lambda ledger: ledger.audit.account_mismatches.update(a="balance 900 vs entries 800"),
        {"audit"},
    ),
    "the audit: entries of one transfer that contradict each other": (
        lambda ledger: ledger.audit.contradictions.update(t1="both credited and refunded"),
        {"audit"},
    ),
    "the audit: a currency not conserved": (
        lambda ledger: ledger.audit.currencies.update(USD=CurrencyTotals(1001, 0, 0, 1000, 0)),
        {"audit"},
    ),
    "the audit: money in flight": (
        lambda ledger: ledger.audit.currencies.update(USD=CurrencyTotals(900, 0, 100, 1000, 0)),
        {"in_flight"},
    ),
    "the audit: money stranded by an ended transfer": (
        lambda ledger: ledger.audit.stranded.update(t1="debit of 100 on a: workflow ended"),
        {"in_flight"},
    ),
    "a batch that never ended": (
        _batched(lambda ledger: ledger.batch_runs.update(b1=[BatchRunFact("run-b", OPEN)])),
        {"batch", "final_state", "known_transfer"},  # t1's entries: no batch holds it yet
    ),
    "a batch's transfer Temporal records otherwise": (
        _batched(lambda ledger: ledger.batch_runs["b1"][0].statuses.update(t1="FAILED")),
        {"batch", "final_state"},
    ),
    "a batch that lost a transfer": (
        _batched(lambda ledger: ledger.batch_runs["b1"][0].statuses.__delitem__("t2")),
        {"batch", "final_state"},
    ),
    "a batch whose counts are not its transfers'": (
        _batched(lambda ledger: ledger.batch_runs["b1"][0].counts.update(FAILED=0)),
        {"batch"},
    ),
    "a batch submitted again that answered otherwise": (
        _batched(lambda ledger: _echo(ledger, TransferStatus.FAILED)),
        {"batch"},
    ),
    "a batch run twice": (
        _batched(lambda ledger: ledger.batch_runs["b1"].append(ledger.batch_runs["b1"][0])),
        {"single_run"},
    ),
    "a batch's transfer run alone as well": (
        _batched(lambda ledger: ledger.runs.update(t1=[RunFact("run-1", "COMPLETED")])),
        {"single_run"},
    ),
    "a batch's failed transfer that moved money": (
        _batched(_refused_yet_moved),
        {"moves", "conservation"},
    ),
    "an error no fault explains": (
        lambda ledger: ledger.anomalies.append(("t1", "KeyError: 'x'")),
        {"client"},
    ),
    "a duplicate answered wrongly": (
        lambda ledger: ledger.duplicate_problems.append(("t1", "a duplicate got KeyError")),
        {"client"},
    ),
}


def test_a_healthy_ledger_has_no_violation() -> None:
    assert Ledger().violations() == {}


@pytest.mark.parametrize("breakage", BREAKAGES, ids=str)
def test_each_breakage_is_caught_by_its_check(breakage: str) -> None:
    ledger = Ledger()
    break_it, caught_by = BREAKAGES[breakage]
    break_it(ledger)

    assert set(ledger.violations()) == caught_by


def test_every_check_catches_at_least_one_breakage() -> None:
    caught = set().union(*(caught_by for _, caught_by in BREAKAGES.values()))

    assert set(CHECKS) - caught == set(), "checks that no breakage above shows catching"


def test_a_marker_moves_no_money() -> None:
    ledger = Ledger()
    ledger.records["t2"] = _record("t2", TransferKind.CROSS_SHARD, TransferStatus.FAILED)
    ledger.runs["t2"] = [RunFact("run-2", TransferStatus.FAILED)]
    _add_entry(ledger, "t2", "refund", "a", 100, True)

    assert ledger.violations() == {}


def test_a_failed_transfer_debited_and_refunded_moved_nothing_net() -> None:
    ledger = Ledger()
    ledger.records["t2"] = _record("t2", TransferKind.CROSS_SHARD, TransferStatus.FAILED)
    ledger.runs["t2"] = [RunFact("run-2", TransferStatus.FAILED)]
    _add_entry(ledger, "t2", "debit", "a", 100, False)
    _add_entry(ledger, "t2", "refund", "a", 100, False)

    assert ledger.violations() == {}


def test_a_cancelled_transfer_may_be_refunded_and_a_refused_other_run_is_fine() -> None:
    ledger = Ledger()
    _compensated(ledger, "cancelled")
    _run_with_other_fields(ledger, TransferStatus.FAILED, "IdempotencyConflict")

    assert ledger.violations() == {}


def test_an_undisturbed_cross_shard_transfer_is_never_compensated() -> None:
    ledger = Ledger()
    _compensated(ledger)

    assert ledger.violations() == {"expected_outcome": 1}


def test_a_healthy_batch_has_no_violation() -> None:
    ledger = Ledger()
    _in_a_batch(ledger)
    _echo(ledger, TransferStatus.COMPLETED)

    assert ledger.violations() == {}


def test_a_disturbed_same_shard_transfer_may_be_refunded_only_in_a_batch() -> None:
    alone, batched = Ledger(), Ledger()
    _in_a_batch(batched)
    for ledger in (alone, batched):
        _compensated(ledger, "cancelled")
        ledger.records["t1"].planned = PlannedTransfer(
            TransferKind.SAME_SHARD, ledger.records["t1"].request
        )
    batched.runs.clear()
    batched.records["t1"].batch_id = "b1"
    batched.batch_runs["b1"][0].statuses["t1"] = "COMPENSATED"
    batched.batch_runs["b1"][0].counts.update(COMPLETED=0, COMPENSATED=1)

    assert (alone.violations(), batched.violations()) == ({"expected_outcome": 1}, {})
