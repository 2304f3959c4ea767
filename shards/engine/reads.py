"""What a step reads before it decides: its accounts, the transfer's entries, and its hold.

The accounts and the transfer's entries come back from one statement (one round trip): under
`pessimistic` it also locks the account rows, in account-id order. When that statement waits for a
lock, the row it returns is the newest, but the entries are those of the snapshot it started with:
they may miss an entry committed while it waited. The writer guards against that (it counts the
transfer's entries again, see shards.engine.writes) and the runner confirms a refusal against a
fresh read; under `optimistic` every read of the attempt shares one snapshot instead.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import RowMaker
from sqlalchemy import Text, bindparam, select
from sqlalchemy.sql.elements import ColumnElement

from shards.compiled import Compiled, Driver
from shards.engine.account_state import ACCOUNT_COLUMN_NAMES, AccountState, LapsedHold
from shards.engine.changes import PriorEntry, StepContext
from shards.engine.hold_expiry import HOLD_COLUMNS, LAPSED
from shards.records import HoldView
from shards.schema import HoldStatus, accounts, entries, holds

TRANSFER_ID = bindparam("transfer_id", type_=Text)


# The columns of what a step reads, in its types' field order: a row is built by position.
_ACCOUNT_COLUMNS = [accounts.c[name] for name in ACCOUNT_COLUMN_NAMES]
_ENTRY_COLUMNS = [entries.c[name] for name in PriorEntry._fields]


def _account_and_entry(
    _: AsyncCursor[Any],
) -> RowMaker[tuple[AccountState, PriorEntry | None]]:
    """A row of the step's first statement: the account (no lapsed holds read yet), and one
    entry of the transfer or None (outer join)."""

    def make(values: Sequence[Any]) -> tuple[AccountState, PriorEntry | None]:
        account = dict(zip(ACCOUNT_COLUMN_NAMES, values, strict=False))
        entry = values[len(ACCOUNT_COLUMN_NAMES) :]
        return AccountState(**account, lapsed=()), None if entry[0] is None else PriorEntry(*entry)

    return make


@functools.cache
def _accounts_with_entries(accounts_read: int, *, lock: bool) -> Compiled:
    """The first statement for a step on `accounts_read` accounts (one, or two within a shard);
    one scalar parameter per account costs psycopg far less than an array would."""
    ids = [bindparam(f"account_id_{n}", type_=Text) for n in range(accounts_read)]
    query = (
        select(*_ACCOUNT_COLUMNS, *_ENTRY_COLUMNS)
        .select_from(accounts.outerjoin(entries, entries.c.transfer_id == TRANSFER_ID))
        .where(accounts.c.account_id.in_(ids))
        .order_by(accounts.c.account_id)  # row locks are taken in this order: no deadlock
    )
    return Compiled.of(query.with_for_update(of=accounts) if lock else query)


_PRIOR = Compiled.of(select(*_ENTRY_COLUMNS).where(entries.c.transfer_id == TRANSFER_ID))

_HOLD = Compiled.of(select(*HOLD_COLUMNS).where(holds.c.transfer_id == TRANSFER_ID))


@dataclasses.dataclass(frozen=True)
class LapsedOnAccount:
    """A row of `lapsed_holds`: which account the lapsed hold is on, and the hold."""

    account_id: str
    transfer_id: str
    amount: int

    def hold(self) -> LapsedHold:
        """The hold as an account's state carries it."""
        return LapsedHold(self.transfer_id, self.amount)


def lapsed_holds(of_accounts: ColumnElement[bool]) -> Compiled:
    """The active holds `of_accounts` that have lapsed by the database clock: account, transfer
    and amount of each (the step's account read, single or batched)."""
    return Compiled.of(
        select(holds.c.account_id, holds.c.transfer_id, holds.c.amount).where(
            of_accounts,
            holds.c.status == HoldStatus.ACTIVE,
            LAPSED,
        )
    )


_LAPSED = lapsed_holds(holds.c.account_id == bindparam("account_id", type_=Text))


async def read_context(
    connection: Driver,
    transfer_id: str,
    account_ids: Sequence[str],
    *,
    lock: bool,
    with_hold: bool,
    fingerprint: str | None = None,
) -> StepContext:
    """The step's inputs; `lock` takes the account rows' locks first (pessimistic)."""
    ids = sorted(set(account_ids))
    rows = await _accounts_with_entries(len(ids), lock=lock).rows(
        connection,
        _account_and_entry,
        transfer_id=transfer_id,
        **{f"account_id_{n}": account_id for n, account_id in enumerate(ids)},
    )
    states: dict[str, AccountState | None] = dict.fromkeys(account_ids)
    prior: dict[str, PriorEntry] = {}
    for account, entry in rows:
        if states[account.account_id] is None:
            states[account.account_id] = await _with_lapsed(connection, account)
        if entry is not None:
            prior[entry.kind] = entry
    if not rows:  # no account to hang the entries on: read them on their own
        prior = await read_prior(connection, transfer_id)
    hold = await _read_hold(connection, transfer_id) if with_hold else None
    return StepContext(transfer_id, states, prior, hold, fingerprint)


async def read_prior(connection: Driver, transfer_id: str) -> dict[str, PriorEntry]:
    """The transfer's entries on this shard, by kind, read on their own (no account row)."""
    found = await _PRIOR.objects(connection, PriorEntry, transfer_id=transfer_id)
    return {entry.kind: entry for entry in found}


async def _with_lapsed(connection: Driver, account: AccountState) -> AccountState:
    if account.held == 0:  # only an account with money on hold can have a hold that lapsed
        return account
    found = await _LAPSED.objects(connection, LapsedOnAccount, account_id=account.account_id)
    return account._replace(lapsed=tuple(lapsed.hold() for lapsed in found))


async def _read_hold(connection: Driver, transfer_id: str) -> HoldView | None:
    found = await _HOLD.objects(connection, HoldView, transfer_id=transfer_id)
    return found[0] if found else None
