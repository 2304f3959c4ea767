"""Markers on accounts not opened yet, and the opening locks their writes take.

A compensation on an account that does not exist (a credit fenced on an unknown target, a refund
or a void on an unknown source) still writes its marker, without the account's row, so that the
step it settles is refused if the account is opened later and a late run of the same request
gets there (shards.engine.decisions.nothing_to_compensate). No row lock orders that marker
against the account's opening, so both take the account's opening lock (migration 0006: a
trigger takes it on every insert into accounts): a step that would write such a marker runs
again in READ COMMITTED with the locks taken first, and decides on what it reads then. The
account cannot appear until the marker is committed; a step that sees the account sees it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

from sqlalchemy import Text, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from shards.compiled import Compiled, Driver
from shards.engine.changes import Change

T = TypeVar("T")


class OpeningLocksNeeded(Exception):
    """A step decided to write markers on accounts that did not exist, without their opening
    locks: it runs again holding them."""

    def __init__(self, account_ids: Collection[str]) -> None:
        super().__init__(f"markers on unopened accounts {sorted(account_ids)}")
        self.account_ids = frozenset(account_ids)


async def with_opening_locks(attempt: Callable[[frozenset[str]], Awaitable[T]]) -> T:
    """Run `attempt` (one transaction) holding no opening lock; if it decided to write markers
    on accounts not opened yet, run it once more holding theirs (it reads again under them)."""
    try:
        return await attempt(frozenset())
    except OpeningLocksNeeded as needed:
        return await attempt(needed.account_ids)


def unopened_accounts(change: Change) -> frozenset[str]:
    """The accounts `change` writes markers on without their rows (it writes no row at all)."""
    if change.account_writes:
        return frozenset()
    return frozenset(entry.account_id for entry in change.entries)


def require_opening_locks(unopened: Collection[str], held: Collection[str]) -> None:
    """Raise OpeningLocksNeeded unless every account of `unopened` is in `held`."""
    missing = set(unopened).difference(held)
    if missing:
        raise OpeningLocksNeeded(missing)


_LOCK = Compiled.of(select(func.lock_account_openings(bindparam("account_ids", type_=ARRAY(Text)))))


async def lock_openings(connection: Driver, account_ids: Collection[str]) -> None:
    """Take the accounts' opening locks, held until the transaction ends."""
    await _LOCK.run(connection, account_ids=sorted(account_ids))
