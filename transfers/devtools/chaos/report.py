"""The outcome of a chaos run: a table for people, one JSON object for scripts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from transfers.devtools.chaos.duplicates import DuplicateTally
from transfers.devtools.chaos.effects import InjectedFault
from transfers.devtools.chaos.run_record import Violation
from transfers.devtools.chaos.schedule import Fault, FaultKind
from transfers.devtools.chaos.workload import Workload
from transfers.terminal import styled

SHOWN_VIOLATIONS = 50


@dataclass(frozen=True)
class BatchFigures:
    """The batches of a run: how many, how many transfers they held and how those ended."""

    submitted: int = 0
    transfers: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    cancelled: int = 0  # while they ran
    unfinished: int = 0  # no outcome known

    @classmethod
    def of(cls, workload: Workload) -> BatchFigures:
        members = [record for record in workload.records.values() if record.batch_id]
        batches = workload.batches.values()
        return cls(
            submitted=len(batches),
            transfers=len(members),
            by_status=Counter(r.outcome.status.value for r in members if r.outcome),
            cancelled=sum(batch.cancelled for batch in batches),
            unfinished=sum(batch.outcome is None for batch in batches),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "submitted": self.submitted,
            "transfers": self.transfers,
            "by_status": dict(sorted(self.by_status.items())),
            "cancelled": self.cancelled,
            "unfinished": self.unfinished,
        }


@dataclass(frozen=True)
class ChaosReport:
    seed: int
    duration_s: float
    shard_count: int
    accounts: int
    schedule: list[Fault]
    injected: list[InjectedFault]
    submitted: int  # transfers, single and batched
    by_status: Counter[str]  # final status -> transfers
    batches: BatchFigures
    # transfers "cancelled", "frozen" (an account of theirs, meanwhile), "reused" (their id)
    disturbed: Counter[str]
    duplicates: DuplicateTally
    client_retries: int
    worker_restarts: int  # by the supervisor, after a worker exited by itself
    checks: dict[str, list[Violation]]
    startup_s: float
    quiescence_s: float
    wall_s: float
    data_dir: str | None  # kept for a look at the logs, else None

    @property
    def violations(self) -> int:
        return sum(map(len, self.checks.values()))

    @property
    def faults(self) -> dict[str, int]:
        """Fault kind -> how many took effect (every kind listed)."""
        return self._count_faults(took_effect=True)

    @property
    def faults_without_effect(self) -> dict[str, int]:
        """Fault kind -> how many were attempted but changed nothing (no worker to kill, no
        commit of the crash step in time, nothing in flight to cancel ...)."""
        return self._count_faults(took_effect=False)

    def _count_faults(self, *, took_effect: bool) -> dict[str, int]:
        done = Counter(d.fault.kind for d in self.injected if d.effect.took_effect == took_effect)
        return {kind.value: done[kind] for kind in FaultKind}

    @property
    def unfinished(self) -> int:
        return self.submitted - sum(self.by_status.values())

    def as_json(self) -> dict[str, Any]:
        details = [vars(v) for found in self.checks.values() for v in found]
        return {
            "seed": self.seed,
            "duration_s": self.duration_s,
            "shards": self.shard_count,
            "accounts": self.accounts,
            "transfers": {
                "submitted": self.submitted,
                "by_status": dict(sorted(self.by_status.items())),
                "unfinished": self.unfinished,
                **{how: self.disturbed[how] for how in DISTURBANCES},
            },
            "batches": self.batches.as_json(),
            "faults": self.faults,
            "faults_without_effect": self.faults_without_effect,
            "fault_log": [_fault_json(done) for done in self.injected],
            "schedule": [fault.as_json() for fault in self.schedule],
            "duplicates": {
                "joined": self.duplicates.joined,
                "refused": self.duplicates.refused,
                "unanswered": self.duplicates.unanswered,
                "batches_joined": self.duplicates.batches_joined,
                "batches_refused": self.duplicates.batches_refused,
            },
            "checks": {name: len(found) for name, found in self.checks.items()},
            "violations": self.violations,
            "violation_details": details[:SHOWN_VIOLATIONS],
            "client_retries": self.client_retries,
            "worker_restarts": self.worker_restarts,
            "startup_s": round(self.startup_s, 1),
            "quiescence_s": round(self.quiescence_s, 1),
            "wall_s": round(self.wall_s, 1),
            "data_dir": self.data_dir,
        }

    def render(self, console: Console) -> None:
        console.print(
            styled(
                ("chaos run", "bold"),
                f": seed {self.seed}, {self.duration_s:g}s of traffic, "
                f"{self.shard_count} shards, {self.accounts} accounts",
            )
        )
        console.print(
            self._transfers_table(),
            self._batches_table(),
            self._faults_table(),
            self._checks_table(),
        )
        duplicates = self.duplicates
        console.print(
            f"quiescence {self.quiescence_s:.1f}s after the traffic stopped; start-up "
            f"{self.startup_s:.1f}s; wall {self.wall_s:.1f}s; client retries "
            f"{self.client_retries}; worker restarts by the supervisor {self.worker_restarts}; "
            f"duplicates {duplicates.joined} joined, {duplicates.refused} refused, "
            f"{duplicates.unanswered} unanswered; batches again {duplicates.batches_joined} "
            f"joined, {duplicates.batches_refused} refused with other transfers",
            highlight=False,
        )
        for found in self.checks.values():
            for violation in found[:SHOWN_VIOLATIONS]:
                console.print(
                    styled((violation.check, "red"), f" {violation.subject}: {violation.detail}")
                )
        if self.data_dir:
            console.print(f"data and logs kept in {self.data_dir}", highlight=False)
        verdict = ("0 violations", "green") if not self.violations else ("VIOLATIONS", "red")
        console.print(styled("verdict: ", verdict))

    def _transfers_table(self) -> Table:
        table = Table("final state", "transfers", title="transfers")
        for status, number in sorted(self.by_status.items()):
            table.add_row(status, str(number))
        table.add_row(styled(("submitted", "bold")), str(self.submitted))
        table.add_row("not final", _flag(self.unfinished))
        for how, label in DISTURBANCES.items():
            table.add_row(label, str(self.disturbed[how]))
        return table

    def _batches_table(self) -> Table:
        batches = self.batches
        table = Table("batches", "", title="batches (their transfers are counted above too)")
        table.add_row("submitted", str(batches.submitted))
        table.add_row("cancelled while running", str(batches.cancelled))
        table.add_row("not final", _flag(batches.unfinished))
        table.add_row(styled(("their transfers", "bold")), str(batches.transfers))
        for status, number in sorted(batches.by_status.items()):
            table.add_row(f"  {status}", str(number))
        return table

    def _faults_table(self) -> Table:
        table = Table(
            "fault",
            "took effect",
            "no effect",
            "at s after traffic began (shard or step)",
            title="faults (* took no effect)",
        )
        for kind, number in self.faults.items():
            when = [_when(done) for done in self.injected if done.fault.kind == kind]
            missed = self.faults_without_effect[kind]
            table.add_row(kind, str(number), str(missed) if missed else "", " ".join(when))
        return table

    def _checks_table(self) -> Table:
        table = Table("invariant", "violations", title="invariants")
        for name, found in self.checks.items():
            table.add_row(name, _flag(len(found)))
        table.add_row(styled(("total", "bold")), _flag(self.violations))
        return table


# how a transfer was disturbed -> the line of the transfers table that counts them
DISTURBANCES = {
    "cancelled": "cancelled while running",
    "frozen": "an account frozen meanwhile",
    "reused": "id reused, other fields",
}


def _when(done: InjectedFault) -> str:
    fault = done.fault
    target = fault.step if fault.shard is None else fault.shard
    missed = "" if done.effect.took_effect else "*"
    return f"{done.started_s:.0f}{missed}" + ("" if target is None else f" ({target})")


def _flag(number: int) -> Text:
    return styled((str(number), "green" if number == 0 else "red"))


def _fault_json(done: InjectedFault) -> dict[str, Any]:
    return {
        **done.fault.as_json(),
        "started_s": round(done.started_s, 1),
        "ended_s": round(done.ended_s, 1),
        "took_effect": done.effect.took_effect,
        "note": done.effect.note,
    }
