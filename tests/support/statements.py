"""An account's balance recomputed from its statement, entry by entry, oldest first."""

from __future__ import annotations

from shards.ledger import Ledger
from shards.statements import StatementEntry

# How each kind moves the balance; a marker moves nothing, a hold or a release only `held`.
SIGN = {
    "deposit": 1,
    "credit": 1,
    "refund": 1,
    "withdrawal": -1,
    "debit": -1,
    "capture": -1,
    "hold": 0,
    "release": 0,
}


def moved(entry: StatementEntry) -> int:
    return 0 if entry.marker else SIGN[entry.kind] * entry.amount


async def statement_pages(
    ledger: Ledger, account_id: str, limit: int = 100
) -> list[tuple[StatementEntry, ...]]:
    """Every page of the account's statement, each newest first, following the cursors."""
    pages: list[tuple[StatementEntry, ...]] = []
    cursor = None
    while True:
        page = await ledger.statement(account_id, limit=limit, before=cursor)
        pages.append(page.entries)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def recomputed_balance(ledger: Ledger, account_id: str, limit: int = 100) -> int:
    """The sum of what the entries moved; each `balance_after` checked against the running sum."""
    balance = 0
    pages = await statement_pages(ledger, account_id, limit)
    for entry in reversed([entry for page in pages for entry in page]):
        balance += moved(entry)
        assert entry.balance_after == balance, entry
    return balance
