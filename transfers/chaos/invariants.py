"""The invariants of a chaos run, checked on the evidence once the system is quiet.

Every check is a pure function of what the run submitted, saw and read back, so each can be
tested on a hand-made ledger. A check returns its violations; a run passes with none at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from shards.schema import EntryKind
from transfers.chaos.accounts import AccountBook
from transfers.chaos.evidence import EntryFact, Evidence
from transfers.chaos.mix import ALLOWED_STATUSES
from transfers.chaos.workload import TransferRecord
from workflows.models import TransferStatus

K = EntryKind
S = TransferStatus
TAKEN = (K.DEBIT, K.CAPTURE)
MOVES = (*TAKEN, K.CREDIT, K.REFUND)
PAID_BY = {S.COMPLETED: K.CREDIT, S.COMPENSATED: K.REFUND}  # the move that ends each outcome


@dataclass(frozen=True)
class Violation:
    check: str
    subject: str
    detail: str


@dataclass(frozen=True)
class RunRecord:
    """What the run did: its accounts, its transfers, and what its clients could not explain."""

    book: AccountBook
    transfers: dict[str, TransferRecord]
    client_anomalies: list[tuple[str, str]]  # (transfer id, what went wrong)
    duplicate_problems: list[tuple[str, str]]


Check = Callable[[RunRecord, Evidence], Iterator[Violation]]


def check_all(run: RunRecord, evidence: Evidence) -> dict[str, list[Violation]]:
    """Check name -> its violations, for every check (an empty list when it held)."""
    return {name: list(check(run, evidence)) for name, check in CHECKS.items()}


def final_states(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """Every transfer ended, and Temporal records the same final status as its client saw."""
    for transfer_id, record in run.transfers.items():
        outcome = record.outcome
        listed = evidence.temporal.statuses.get(transfer_id, "not listed")
        if outcome is None or not outcome.status.final:
            seen = outcome.status if outcome else f"no answer ({record.last_error})"
            yield Violation("final_state", transfer_id, f"not final: {seen}; Temporal: {listed}")
        elif listed != outcome.status:
            yield Violation("final_state", transfer_id, f"{outcome.status}, Temporal: {listed}")


def single_runs(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """One workflow run per transfer id, however often it was submitted."""
    for transfer_id, runs in evidence.temporal.runs.items():
        if runs > 1:
            yield Violation("single_run", transfer_id, f"{runs} workflow runs")


def expected_outcomes(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """A transfer ends only in a state its kind allows (an overdraft never completes ...)."""
    for transfer_id, record in run.transfers.items():
        allowed = ALLOWED_STATUSES[record.planned.kind]
        if record.outcome and record.outcome.status.final and record.outcome.status not in allowed:
            yield Violation(
                "expected_outcome",
                transfer_id,
                f"{record.planned.kind} ended {record.outcome.status}",
            )


def conservation(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """Per currency: balances add up to what was deposited less what was withdrawn, and the
    audit sees nothing in flight."""
    balances: dict[str, int] = defaultdict(int)
    for account in evidence.accounts:
        balances[account.currency] += account.balance
    for currency in sorted(set(balances) | set(run.book.deposited)):
        expected = run.book.deposited[currency] - run.book.withdrawn[currency]
        if balances[currency] != expected:
            yield Violation(
                "conservation", currency, f"balances {balances[currency]}, expected {expected}"
            )
        totals = evidence.audit.currencies.get(currency)
        if totals is not None and totals.in_flight:
            yield Violation("conservation", currency, f"{totals.in_flight} still in flight")


def audit_findings(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """As `transfers audit`: balances agree with entries, `held` with holds, entries agree."""
    for account_id, problem in evidence.audit.account_mismatches.items():
        yield Violation("audit", account_id, problem)
    for transfer_id, problem in evidence.audit.contradictions.items():
        yield Violation("audit", transfer_id, problem)


def non_negative(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    for account in evidence.accounts:
        if min(account.balance, account.available, account.held) < 0:
            yield Violation(
                "non_negative",
                account.account_id,
                f"balance {account.balance}, available {account.available}, held {account.held}",
            )


def credited_and_refunded(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    for transfer_id, moves in _moves_by_transfer(evidence.entries).items():
        kinds = {move.kind for move in moves}
        if K.CREDIT in kinds and K.REFUND in kinds:
            yield Violation("credited_and_refunded", transfer_id, "both credited and refunded")


def money_moves(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """A completed transfer took once from its source and credited its target once, the same
    amount; a compensated one took and refunded; any other final state moved nothing."""
    moves = _moves_by_transfer(evidence.entries)
    for transfer_id, record in run.transfers.items():
        if record.outcome is None:
            continue  # named by final_states
        problem = _moves_problem(record, record.outcome.status, moves.get(transfer_id, []))
        if problem:
            yield Violation("moves", transfer_id, problem)


def holds_released(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    for transfer_id in evidence.active_holds:
        yield Violation("holds_released", transfer_id, "its hold is still active")


def known_transfers(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """Every entry belongs to a deposit or withdrawal of the run or to a transfer it submitted
    that Temporal knows."""
    for transfer_id in sorted({entry.transfer_id for entry in evidence.entries}):
        if transfer_id in run.book.flow_ids:
            continue
        if transfer_id not in run.transfers:
            yield Violation("known_transfer", transfer_id, "entries of a transfer never submitted")
        elif transfer_id not in evidence.temporal.runs:
            yield Violation("known_transfer", transfer_id, "entries, but no workflow in Temporal")


def client_answers(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """Errors that no fault explains, and duplicates answered wrongly."""
    for transfer_id, problem in run.client_anomalies:
        yield Violation("client", transfer_id, problem)
    for transfer_id, problem in run.duplicate_problems:
        yield Violation("duplicates", transfer_id, problem)


CHECKS: dict[str, Check] = {
    "final_state": final_states,
    "single_run": single_runs,
    "expected_outcome": expected_outcomes,
    "conservation": conservation,
    "audit": audit_findings,
    "non_negative": non_negative,
    "credited_and_refunded": credited_and_refunded,
    "moves": money_moves,
    "holds_released": holds_released,
    "known_transfer": known_transfers,
    "client": client_answers,
}


def _moves_by_transfer(facts: Iterable[EntryFact]) -> dict[str, list[EntryFact]]:
    moves: dict[str, list[EntryFact]] = defaultdict(list)
    for fact in facts:
        if fact.kind in MOVES and not fact.marker:
            moves[fact.transfer_id].append(fact)
    return moves


def _moves_problem(
    record: TransferRecord, status: TransferStatus, moves: list[EntryFact]
) -> str | None:
    """What is wrong with the money moves of a transfer that ended in `status`, or None."""
    request = record.request
    taken = [move for move in moves if move.kind in TAKEN]
    paid_kind = PAID_BY.get(status)
    if paid_kind is None:
        return f"{status}, yet {_kinds(moves)}" if moves else None
    paid = [move for move in moves if move.kind == paid_kind]
    if len(taken) != 1 or len(paid) != 1 or len(moves) != 2:
        return f"{status} with {_kinds(moves) or 'no moves'}"
    payee = request.target_account_id if paid_kind == K.CREDIT else request.source_account_id
    if (taken[0].account_id, paid[0].account_id) != (request.source_account_id, payee):
        return f"moved {taken[0].account_id} -> {paid[0].account_id}"
    wanted = record.planned.post_amount or request.amount
    if {taken[0].amount, paid[0].amount} != {wanted}:
        return f"took {taken[0].amount}, paid {paid[0].amount}, expected {wanted}"
    return None


def _kinds(moves: list[EntryFact]) -> str:
    return ", ".join(f"{move.kind} {move.amount} on {move.account_id}" for move in moves)
