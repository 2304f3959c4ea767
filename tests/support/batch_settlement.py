"""Judging transfers by their entries, many at once (batches, and single transfers beside them).

Every transfer must have ended, and its status must agree with its entries on the shards; every
balance, recomputed from the outcomes alone (what the test knows the accounts held, plus each
COMPLETED transfer's amount), must equal the shards'; nothing is held; the audit finds nothing
wrong with these transfers or accounts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import bindparam, text

from shards.audit import run_audit
from shards.ledger import Ledger
from tests.support.lost_tasks import EntryRow, moved_by_entries
from workflows.models import TransferOutcome, TransferRequest, TransferStatus

# What each final status leaves on the shards: the (kind, account side) of its real entries.
REAL_ENTRIES = {
    TransferStatus.COMPLETED: {("debit", "source"), ("credit", "target")},
    TransferStatus.COMPENSATED: {("debit", "source"), ("refund", "source")},
    TransferStatus.FAILED: set(),
}


async def entries_by_transfer(
    ledger: Ledger, transfer_ids: Sequence[str]
) -> dict[str, list[EntryRow]]:
    """Every entry of these transfers, on every shard (read with SQL, not through the ledger)."""
    query = text(
        "SELECT transfer_id, kind, account_id, amount, marker FROM entries "
        "WHERE transfer_id IN :transfer_ids"
    ).bindparams(bindparam("transfer_ids", expanding=True))
    found: dict[str, list[EntryRow]] = defaultdict(list)
    for shard in ledger.router.shards:
        async with shard.engine.connect() as connection:
            rows = await connection.execute(query, {"transfer_ids": list(transfer_ids)})
            for transfer_id, *row in rows:
                found[transfer_id].append(EntryRow(*row))
    return found


def assert_agrees(request: TransferRequest, outcome: TransferOutcome, rows: list[EntryRow]) -> None:
    """The outcome is final and says what the transfer's entries say, on the right accounts."""
    assert outcome.transfer_id == request.transfer_id
    assert outcome.status.final, outcome
    moved_by_entries(rows)  # no kind twice, not credited and refunded, nothing in flight
    side = {request.source_account_id: "source", request.target_account_id: "target"}
    real = {(row.kind, side.get(row.account_id, row.account_id)) for row in rows if not row.marker}
    assert real == REAL_ENTRIES[outcome.status], (outcome, rows)
    assert all(row.amount == request.amount for row in rows), rows


async def assert_transfers_settled(
    ledger: Ledger,
    requests: Sequence[TransferRequest],
    outcomes: Sequence[TransferOutcome],
    *,
    held_before: dict[str, int],
) -> dict[str, int]:
    """`held_before`: what each account held had none of `requests` moved money (opening
    balances, plus the deposits and withdrawals the test made). Returns the balances."""
    assert len(requests) == len(outcomes)
    rows = await entries_by_transfer(ledger, [request.transfer_id for request in requests])
    expected = dict(held_before)
    for request, outcome in zip(requests, outcomes, strict=True):
        if outcome.error is not None and outcome.error.type == "IdempotencyConflict":
            continue  # the id's entries are another request's, judged with that request
        assert_agrees(request, outcome, rows.get(request.transfer_id, []))
        if outcome.status == TransferStatus.COMPLETED:
            expected[request.source_account_id] -= request.amount
            expected[request.target_account_id] += request.amount
    views = {account: await ledger.get_account(account) for account in held_before}
    assert {account: view.balance for account, view in views.items()} == expected
    assert all(view.held == 0 for view in views.values())

    async def ended(transfer_ids: list[str]) -> set[str]:
        return set(transfer_ids)

    report = await run_audit(ledger.router, workflow_ended=ended)
    ours = {request.transfer_id for request in requests}
    assert not ours & (set(report.contradictions) | set(report.stranded)), report
    assert not set(held_before) & set(report.account_mismatches), report
    return expected
