"""What a step reads before it decides: its accounts, the transfer's entries, and its hold.

The accounts and the transfer's entries come back from one statement (one round trip): under
`pessimistic` it also locks the account rows, in account-id order. When that statement waits for a
lock, the row it returns is the newest, but the entries are those of the snapshot it started with:
they may miss an entry committed while it waited. The writer guards against that (it counts the
transfer's entries again, see shards.engine.writes) and the runner confirms a refusal against a
fresh read; under `optimistic` every read of the attempt shares one snapshot instead.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Text, bindparam, func, select
from sqlalchemy.sql.elements import ColumnElement

from shards.compiled import Compiled, Driver
from shards.engine.account_state import AccountState, LapsedHold
from shards.engine.changes import HoldRow, PriorEntry, StepContext
from shards.schema import HoldStatus, accounts, entries, holds

TRANSFER_ID = bindparam("transfer_id", type_=Text)


@dataclass(frozen=True)
class _AccountWithEntry:
    """A row of the step's first statement: an account, and one entry of the transfer or None."""

    account_id: str
    currency: str
    balance: int
    held: int
    status: str
    version: int
    kind: str | None
    entry_account_id: str | None
    amount: int | None
    marker: bool | None
    balance_after: int | None
    fingerprint: str | None

    def entry(self) -> PriorEntry | None:
        """The entry half of the row; None when the transfer has no entry (outer join)."""
        if (
            self.kind is None
            or self.entry_account_id is None
            or self.amount is None
            or self.marker is None
            or self.balance_after is None
        ):
            return None
        return PriorEntry(
            self.kind,
            self.entry_account_id,
            self.amount,
            self.marker,
            self.balance_after,
            self.fingerprint,
        )


@functools.cache
def _accounts_with_entries(accounts_read: int, *, lock: bool) -> Compiled:
    """The first statement for a step on `accounts_read` accounts (one, or two within a shard);
    one scalar parameter per account costs psycopg far less than an array would."""
    ids = [bindparam(f"account_id_{n}", type_=Text) for n in range(accounts_read)]
    query = (
        select(
            accounts.c.account_id,
            accounts.c.currency,
            accounts.c.balance,
            accounts.c.held,
            accounts.c.status,
            accounts.c.version,
            entries.c.kind,
            entries.c.account_id.label("entry_account_id"),
            entries.c.amount,
            entries.c.marker,
            entries.c.balance_after,
            entries.c.fingerprint,
        )
        .select_from(accounts.outerjoin(entries, entries.c.transfer_id == TRANSFER_ID))
        .where(accounts.c.account_id.in_(ids))
        .order_by(accounts.c.account_id)  # row locks are taken in this order: no deadlock
    )
    return Compiled.of(query.with_for_update(of=accounts) if lock else query)


_PRIOR = Compiled.of(
    select(
        entries.c.kind,
        entries.c.account_id,
        entries.c.amount,
        entries.c.marker,
        entries.c.balance_after,
        entries.c.fingerprint,
    ).where(entries.c.transfer_id == TRANSFER_ID)
)

_HOLD = Compiled.of(
    select(
        holds.c.transfer_id,
        holds.c.account_id,
        holds.c.amount,
        holds.c.status,
        holds.c.expires_at,
        (holds.c.expires_at <= func.clock_timestamp()).label("expired"),
    ).where(holds.c.transfer_id == TRANSFER_ID)
)


@dataclass(frozen=True)
class LapsedOnAccount:
    """A row of `lapsed_holds`: which account the lapsed hold is on, and the hold."""

    account_id: str
    transfer_id: str
    amount: int

    def hold(self) -> LapsedHold:
        """The hold as an account's state carries it."""
        return LapsedHold(self.transfer_id, self.amount)


def lapsed_holds(of_accounts: ColumnElement[bool]) -> Compiled:
    """The active holds `of_accounts` that have lapsed by the database clock (the one place that
    judges it for a step's account read): account, transfer and amount of each."""
    return Compiled.of(
        select(holds.c.account_id, holds.c.transfer_id, holds.c.amount).where(
            of_accounts,
            holds.c.status == HoldStatus.ACTIVE,
            holds.c.expires_at <= func.clock_timestamp(),
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
    rows = await _accounts_with_entries(len(ids), lock=lock).objects(
        connection,
        _AccountWithEntry,
        transfer_id=transfer_id,
        **{f"account_id_{n}": account_id for n, account_id in enumerate(ids)},
    )
    states: dict[str, AccountState | None] = dict.fromkeys(account_ids)
    prior: dict[str, PriorEntry] = {}
    for row in rows:
        if states[row.account_id] is None:
            states[row.account_id] = await _account_state(connection, row)
        entry = row.entry()
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


async def _account_state(connection: Driver, row: _AccountWithEntry) -> AccountState:
    lapsed: list[LapsedHold] = []
    if row.held > 0:  # only an account with money on hold can have a hold that lapsed
        found = await _LAPSED.objects(connection, LapsedOnAccount, account_id=row.account_id)
        lapsed = [lapsed_hold.hold() for lapsed_hold in found]
    return AccountState(
        row.account_id,
        row.currency,
        row.balance,
        row.held,
        row.status,
        row.version,
        tuple(lapsed),
    )


async def _read_hold(connection: Driver, transfer_id: str) -> HoldRow | None:
    found = await _HOLD.objects(connection, HoldRow, transfer_id=transfer_id)
    return found[0] if found else None
