"""Each invariant check catches the breakage it is named for, on a hand-made ledger, and a
healthy ledger passes all of them: a chaos run that reports 0 violations means something."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from shards.audit import AuditReport
from shards.records import AccountView
from transfers.chaos.accounts import AccountBook
from transfers.chaos.evidence import EntryFact, Evidence, TemporalView
from transfers.chaos.invariants import RunRecord, check_all
from transfers.chaos.mix import PlannedTransfer, TransferKind
from transfers.chaos.workload import TransferRecord
from workflows.models import TransferOutcome, TransferRequest, TransferStatus

S = TransferStatus


@dataclass
class Ledger:
    """One completed transfer of 100 from a to b, after a deposit of 1000 into a."""

    balances: dict[str, int] = field(default_factory=lambda: {"a": 900, "b": 100})
    entries: list[EntryFact] = field(
        default_factory=lambda: [
            EntryFact("dep-a", "deposit", "a", 1000, False),
            EntryFact("t1", "debit", "a", 100, False),
            EntryFact("t1", "credit", "b", 100, False),
        ]
    )
    records: dict[str, TransferRecord] = field(
        default_factory=lambda: {"t1": _record("t1", TransferKind.CROSS_SHARD, S.COMPLETED)}
    )
    runs: Counter[str] = field(default_factory=lambda: Counter({"t1": 1}))
    listed: dict[str, str] = field(default_factory=lambda: {"t1": "COMPLETED"})
    active_holds: list[str] = field(default_factory=list)
    anomalies: list[tuple[str, str]] = field(default_factory=list)

    def violations(self) -> dict[str, int]:
        book = AccountBook(2, open={"USD": ["a", "b"]}, flow_ids={"dep-a"})
        book.deposited["USD"] = 1000
        accounts = [
            AccountView(account, "USD", balance, 0, balance, "open", 1, 0)
            for account, balance in self.balances.items()
        ]
        evidence = Evidence(
            accounts,
            self.entries,
            self.active_holds,
            AuditReport(),
            TemporalView(self.runs, self.listed),
        )
        run = RunRecord(book, self.records, self.anomalies, [])
        return {name: len(found) for name, found in check_all(run, evidence).items() if found}


def _record(transfer_id: str, kind: TransferKind, status: S | None) -> TransferRecord:
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


def _ends(ledger: Ledger, kind: TransferKind, status: S) -> None:
    """t1 was of `kind` and ended in `status`, for its client and for Temporal alike."""
    ledger.records["t1"] = _record("t1", kind, status)
    ledger.listed["t1"] = status


def _add_entry(ledger: Ledger, *entry: object) -> None:
    ledger.entries.append(EntryFact(*entry))  # type: ignore[arg-type]


BREAKAGES: dict[str, tuple[Callable[[Ledger], None], set[str]]] = {
    "a cent made from nothing": (
        lambda ledger: ledger.balances.update(b=101),
        {"conservation"},
    ),
    "a balance below zero": (
        lambda ledger: ledger.balances.update(a=-100, b=1100),
        {"non_negative"},
    ),
    "credited and refunded": (
        lambda ledger: _add_entry(ledger, "t1", "refund", "a", 100, False),
        {"credited_and_refunded", "moves"},
    ),
    "a second debit on another shard": (
        lambda ledger: _add_entry(ledger, "t1", "debit", "b", 100, False),
        {"moves"},
    ),
    "a credit of another amount": (
        lambda ledger: ledger.entries.__setitem__(2, EntryFact("t1", "credit", "b", 99, False)),
        {"moves"},
    ),
    "entries of a transfer nobody submitted": (
        lambda ledger: _add_entry(ledger, "ghost", "debit", "a", 5, False),
        {"known_transfer"},
    ),
    "a transfer still running": (
        lambda ledger: ledger.records.update(t1=_record("t1", TransferKind.CROSS_SHARD, None)),
        {"final_state"},
    ),
    "Temporal disagrees with the client": (
        lambda ledger: ledger.listed.update(t1="FAILED"),
        {"final_state"},
    ),
    "two runs of one id": (
        lambda ledger: ledger.runs.update(t1=1),
        {"single_run"},
    ),
    "an overdraft that completed": (
        lambda ledger: _ends(ledger, TransferKind.OVERDRAFT, S.COMPLETED),
        {"expected_outcome"},
    ),
    "a failed transfer that moved money": (
        lambda ledger: _ends(ledger, TransferKind.CROSS_SHARD, S.FAILED),
        {"moves"},
    ),
    "a hold left active": (
        lambda ledger: ledger.active_holds.append("t1"),
        {"holds_released"},
    ),
    "an error no fault explains": (
        lambda ledger: ledger.anomalies.append(("t1", "KeyError: 'x'")),
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


def test_a_marker_moves_no_money() -> None:
    ledger = Ledger()
    ledger.records["t2"] = _record("t2", TransferKind.CROSS_SHARD, S.FAILED)
    ledger.runs["t2"], ledger.listed["t2"] = 1, "FAILED"
    _add_entry(ledger, "t2", "refund", "a", 100, True)

    assert ledger.violations() == {}
