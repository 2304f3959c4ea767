"""The chaos checks on money: what the shards hold, read against what the transfers' outcomes say
must have moved. Each is a pure function of the run and the evidence (see invariants.py)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator

from shards.schema import EntryKind
from transfers.devtools.chaos.evidence import EntryFact, Evidence
from transfers.devtools.chaos.run_record import RunRecord, Violation
from transfers.devtools.chaos.workload import TransferRecord
from workflows.models import TransferStatus

TAKEN = (EntryKind.DEBIT, EntryKind.CAPTURE)
PAID = (EntryKind.CREDIT, EntryKind.REFUND)
MOVES = (*TAKEN, *PAID)
PAID_BY = {
    TransferStatus.COMPLETED: EntryKind.CREDIT,
    TransferStatus.COMPENSATED: EntryKind.REFUND,
}  # the move that ends each outcome


def conservation(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """Recomputed from outside the ledger: per currency, the balances add up to what the run
    deposited less what it withdrew; per account, the balance is its opening balance moved by
    the transfers that its clients saw COMPLETED, and by nothing else."""
    balances: Counter[str] = Counter()
    for account in evidence.accounts:
        balances[account.currency] += account.balance
    for currency in sorted(set(balances) | set(run.book.deposited)):
        expected = run.book.deposited[currency] - run.book.withdrawn[currency]
        if balances[currency] != expected:
            yield Violation(
                "conservation", currency, f"balances {balances[currency]}, expected {expected}"
            )
    expected_balances, unknown = _balances_from_outcomes(run)
    for account in evidence.accounts:
        expected = expected_balances[account.account_id]
        if account.account_id not in unknown and account.balance != expected:
            yield Violation(
                "conservation",
                account.account_id,
                f"balance {account.balance}, the outcomes say {expected}",
            )


def in_flight(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """Once every transfer has ended, no money is taken and neither credited nor refunded: by
    the entries themselves, and by the audit (in flight per currency, stranded per transfer)."""
    for transfer_id, moves in _moves_by_transfer(evidence.entries).items():
        taken = sum(move.amount for move in moves if move.kind in TAKEN)
        paid = sum(move.amount for move in moves if move.kind in PAID)
        if taken > paid:
            yield Violation("in_flight", transfer_id, f"{taken - paid} taken, never paid out")
    for currency, totals in sorted(evidence.audit.currencies.items()):
        if totals.in_flight:
            yield Violation("in_flight", currency, f"the audit sees {totals.in_flight} in flight")
    for transfer_id, problem in evidence.audit.stranded.items():
        yield Violation("in_flight", transfer_id, f"the audit: {problem}")


def audit_findings(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """As `transfers audit`: balances agree with entries, `held` with holds, entries agree, and
    each currency is conserved."""
    audit = evidence.audit
    for account_id, problem in audit.account_mismatches.items():
        yield Violation("audit", account_id, problem)
    for transfer_id, problem in audit.contradictions.items():
        yield Violation("audit", transfer_id, problem)
    for currency, totals in sorted(audit.currencies.items()):
        if not totals.conserved:
            yield Violation("audit", currency, f"not conserved: {totals}")


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
        if EntryKind.CREDIT in kinds and EntryKind.REFUND in kinds:
            yield Violation("credited_and_refunded", transfer_id, "both credited and refunded")


def money_moves(run: RunRecord, evidence: Evidence) -> Iterator[Violation]:
    """The entries agree with the final status: COMPLETED took once from its source and credited
    its target once, the same amount; COMPENSATED took and refunded; any other final state moved
    nothing, net."""
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


def _balances_from_outcomes(run: RunRecord) -> tuple[Counter[str], set[str]]:
    """Account -> the balance the outcomes imply; and the accounts that a transfer without a
    known outcome touches, for which none can be implied."""
    balances = Counter(run.book.opening)
    unknown: set[str] = set()
    for record in run.transfers.values():
        request = record.request
        accounts = (request.source_account_id, request.target_account_id)
        if record.outcome is None:
            unknown.update(accounts)
        elif record.outcome.status == TransferStatus.COMPLETED:
            balances[request.source_account_id] -= _asked(record)
            balances[request.target_account_id] += _asked(record)
    return balances, unknown


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
    paid_kind = PAID_BY.get(status)
    if paid_kind is None:
        return f"{status}, yet {_kinds(moves)}" if any(_net_by_account(moves).values()) else None
    taken = [move for move in moves if move.kind in TAKEN]
    paid = [move for move in moves if move.kind == paid_kind]
    if len(taken) != 1 or len(paid) != 1 or len(moves) != 2:
        return f"{status} with {_kinds(moves) or 'no moves'}"
    payee = (
        request.target_account_id if paid_kind == EntryKind.CREDIT else request.source_account_id
    )
    if (taken[0].account_id, paid[0].account_id) != (request.source_account_id, payee):
        return f"moved {taken[0].account_id} -> {paid[0].account_id}"
    if {taken[0].amount, paid[0].amount} != {_asked(record)}:
        return f"took {taken[0].amount}, paid {paid[0].amount}, expected {_asked(record)}"
    return None


def _net_by_account(moves: list[EntryFact]) -> Counter[str]:
    net: Counter[str] = Counter()
    for move in moves:
        net[move.account_id] += -move.amount if move.kind in TAKEN else move.amount
    return net


def _asked(record: TransferRecord) -> int:
    """What the transfer moves when it completes: the request's amount, or the part posted."""
    return record.planned.post_amount or record.request.amount


def _kinds(moves: list[EntryFact]) -> str:
    return ", ".join(f"{move.kind} {move.amount} on {move.account_id}" for move in moves)
