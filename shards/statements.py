"""An account's statement: its entries newest first, one keyset page at a time.

Entries are ordered by `entry_id`, not by `created_at`: an account's steps run one at a time under
its row (lock or version), and each takes its id from the identity sequence while it holds the row,
so `entry_id` order is the order the balances followed (`balance_after` chains along it), and an
entry older than a page already read cannot appear later. `created_at` is the start of the step's
transaction and can disagree with that order when a step waited for the row.

The cursor is opaque to callers: the `next_cursor` of one page asks for the page after it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from shards.errors import AccountNotFound, InvalidCursor, InvalidInput
from shards.router import ShardRouter
from shards.schema import accounts, entries
from shards.validation import MAX_AMOUNT, MAX_PAGE, check_account_id

_CURSOR_PREFIX = "entries-before:"
_ENTRY_ID = re.compile(r"[1-9][0-9]{0,18}")  # ASCII digits only, a positive BIGINT at most


@dataclass(frozen=True)
class StatementEntry:
    """One line of a statement; `amount` is what the entry moved (always positive, `kind` says
    which way; a `marker` moved nothing), `balance_after` the account's balance after it."""

    entry_id: int
    created_at: datetime
    kind: str
    transfer_id: str
    amount: int
    balance_after: int
    marker: bool


@dataclass(frozen=True)
class StatementPage:
    """Entries of one account, newest first; `next_cursor` is None on the last page."""

    account_id: str
    currency: str
    entries: tuple[StatementEntry, ...]
    next_cursor: str | None


def encode_cursor(entry_id: int) -> str:
    """An opaque cursor for the page that starts before `entry_id`."""
    raw = f"{_CURSOR_PREFIX}{entry_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The entry id a cursor points before; InvalidCursor for anything `encode_cursor` did not
    make (a cut, an edited or a foreign string)."""
    problem = InvalidCursor(f"cursor {cursor[:80]!r} is not one that a statement page returned")
    if not cursor.isascii() or len(cursor) > 64:
        raise problem
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        raise problem from None
    digits = raw.removeprefix(_CURSOR_PREFIX)
    if digits == raw or not _ENTRY_ID.fullmatch(digits) or int(digits) > MAX_AMOUNT:
        raise problem
    return int(digits)


def check_limit(limit: int) -> int:
    """`limit`, if it is an integer from 1 to MAX_PAGE; InvalidInput otherwise."""
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit {limit!r} must be an integer from 1 to {MAX_PAGE}")
    return limit


async def read_statement(
    router: ShardRouter, account_id: str, *, limit: int = 100, before: str | None = None
) -> StatementPage:
    """Up to `limit` entries of `account_id`, newest first, older than the cursor `before`."""
    check_account_id(account_id)
    check_limit(limit)
    before_id = None if before is None else decode_cursor(before)
    query = (
        select(
            entries.c.entry_id,
            entries.c.created_at,
            entries.c.kind,
            entries.c.transfer_id,
            entries.c.amount,
            # a marker written before the account was opened: nothing was there yet
            func.coalesce(entries.c.balance_after, 0).label("balance_after"),
            entries.c.marker,
        )
        .where(entries.c.account_id == account_id)
        .order_by(entries.c.entry_id.desc())
        .limit(limit + 1)  # one more tells whether another page follows
    )
    if before_id is not None:
        query = query.where(entries.c.entry_id < before_id)
    currency_query = select(accounts.c.currency).where(accounts.c.account_id == account_id)
    async with router.shard_for(account_id).begin(snapshot=True) as connection:
        currency = await connection.scalar(currency_query)
        rows = (await connection.execute(query)).all()
    if currency is None:
        raise AccountNotFound(f"account {account_id} does not exist")
    page = tuple(StatementEntry(**row._asdict()) for row in rows[:limit])
    more = len(rows) > limit
    return StatementPage(
        account_id, currency, page, encode_cursor(page[-1].entry_id) if more else None
    )
