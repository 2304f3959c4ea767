"""The invariants of a chaos run, checked on the evidence once the system is quiet.

Every check is a pure function of what the run submitted, saw and read back, so each can be
tested on a hand-made ledger. A check returns its violations; a run passes with none at all.
The checks on money live in money_checks.py; CHECKS below is the list of all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from shards.errors import IdempotencyConflict
from transfers.devtools.chaos.evidence import OPEN, Evidence
from transfers.devtools.chaos.mix import allowed_statuses
from transfers.devtools.chaos.money_checks import (
    audit_findings,
    conservation,
    credited_and_refunded,
    holds_released,
    in_flight,
    money_moves,
    non_negative,
)
from transfers.devtools.chaos.run_record import RunRecord, Violation
from workflows.batch_models import count_statuses
from workflows.models import TransferStatus

Check = Callable[[RunRecord, Evidence], Iterator[Violation]]
REFUSED_AS = IdempotencyConflict.__name__  # how a run with other fields must end


def check_all(run: RunRecord, evidence: Evidence) -> dict[str, list[Violation]]:
    """Check name -> its violations, for every check (an empty list when it held)."""
    return {name: list(check(run, evidence)) for name, check in CHECKS.items()}


def final_states(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """Every transfer ended, and Temporal records the same final status as its client saw (in
    its own workflow, or in its batch's)."""
    for transfer_id, record in run.transfers.items():
        outcome = record.outcome
        listed = evidence.temporal.first_status(transfer_id, record.batch_id)
        if outcome is None or not outcome.status.final:
            seen = outcome.status if outcome else f"no answer ({record.last_error})"
            yield Violation("final_state", transfer_id, f"not final: {seen}; Temporal: {listed}")
        elif listed != outcome.status:
            yield Violation("final_state", transfer_id, f"{outcome.status}, Temporal: {listed}")


def single_runs(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """One workflow run per transfer id, however often it was submitted (besides the runs the
    same-id fault started on purpose), and none for a transfer of a batch; one run per batch id."""
    for transfer_id, runs in evidence.temporal.runs.items():
        record = run.transfers.get(transfer_id)
        ours = len(runs) - (record.other_runs if record else 0)
        if record is not None and record.batch_id is not None:
            yield Violation("single_run", transfer_id, f"{len(runs)} runs beside its batch")
        elif ours > 1:
            yield Violation("single_run", transfer_id, f"{len(runs)} workflow runs")
    for batch_id, batch_runs in evidence.temporal.batch_runs.items():
        if len(batch_runs) > 1:
            yield Violation("single_run", f"batch {batch_id}", f"{len(batch_runs)} workflow runs")


def same_id_other_fields(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """A new run of an ended transfer's workflow id, with other fields, ends FAILED with an
    IdempotencyConflict (that it moved nothing, `moves` and `conservation` say)."""
    for transfer_id, record in run.transfers.items():
        if not record.other_runs:
            continue
        for later in evidence.temporal.runs.get(transfer_id, [])[1:]:
            if later.status == OPEN:
                yield Violation("same_id", transfer_id, "a run with other fields never ended")
            elif (later.status, later.error_type) != (TransferStatus.FAILED, REFUSED_AS):
                yield Violation(
                    "same_id",
                    transfer_id,
                    f"a run with other fields ended {later.status} ({later.error_type})",
                )


def expected_outcomes(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """A transfer ends only in a state its kind allows (an overdraft never completes ...);
    a cancellation or a frozen account allows a refusal or a refund too."""
    for transfer_id, record in run.transfers.items():
        kind, outcome = record.planned.kind, record.outcome
        in_batch = record.batch_id is not None
        allowed = allowed_statuses(kind, disturbed=bool(record.disturbed_by), in_batch=in_batch)
        if outcome and outcome.status.final and outcome.status not in allowed:
            disturbed = (
                f" ({', '.join(sorted(record.disturbed_by))})" if record.disturbed_by else ""
            )
            yield Violation(
                "expected_outcome", transfer_id, f"{kind}{disturbed} ended {outcome.status}"
            )


def known_transfers(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """Every entry belongs to a deposit or withdrawal of the run or to a transfer it submitted
    that Temporal knows (by its workflow, or in a batch)."""
    in_batches = evidence.temporal.batch_members()
    for transfer_id in sorted({entry.transfer_id for entry in evidence.entries}):
        if transfer_id in run.book.flow_ids:
            continue
        if transfer_id not in run.transfers:
            yield Violation("known_transfer", transfer_id, "entries of a transfer never submitted")
        elif transfer_id not in evidence.temporal.runs and transfer_id not in in_batches:
            yield Violation("known_transfer", transfer_id, "entries, but no workflow in Temporal")


def batches(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """Every batch ended, holding exactly the transfers it was submitted with; its counts are
    its transfers' statuses counted; and each resubmission of it answered its outcome."""
    for batch_id, batch in run.batches.items():
        subject = f"batch {batch_id}"
        listed = evidence.temporal.batch_runs.get(batch_id)
        if not listed or listed[0].status == OPEN:
            yield Violation("batch", subject, "not listed" if not listed else "still running")
            continue
        first = listed[0]
        asked = [request.transfer_id for request in batch.requests]
        if sorted(first.statuses) != sorted(asked):
            yield Violation(
                "batch",
                subject,
                f"{first.status}: holds {len(first.statuses)} transfers, {len(asked)} submitted",
            )
            continue
        counted = count_statuses([TransferStatus(first.statuses[tid]) for tid in asked])
        if first.counts != counted:
            yield Violation("batch", subject, f"counts {first.counts}, its transfers {counted}")
        for echo in batch.echoes:
            answered = {outcome.transfer_id: outcome.status.value for outcome in echo.transfers}
            if answered != first.statuses:
                yield Violation("batch", subject, "submitted again, it answered other statuses")


def client_answers(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """Errors that no fault explains, and duplicates answered wrongly."""
    for transfer_id, problem in run.client_anomalies:
        yield Violation("client", transfer_id, problem)
    for transfer_id, problem in run.duplicate_problems:
        yield Violation("duplicates", transfer_id, problem)


CHECKS: dict[str, Check] = {
    "final_state": final_states,
    "single_run": single_runs,
    "same_id": same_id_other_fields,
    "expected_outcome": expected_outcomes,
    "conservation": conservation,
    "in_flight": in_flight,
    "audit": audit_findings,
    "non_negative": non_negative,
    "credited_and_refunded": credited_and_refunded,
    "moves": money_moves,
    "holds_released": holds_released,
    "known_transfer": known_transfers,
    "batch": batches,
    "client": client_answers,
}
