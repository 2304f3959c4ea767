"""Writing what a step decided: account rows and entries in one statement, then any hold.

The statement updates every posted account (new absolute balance and held, `version + 1`) only if
its version is still the one the step read and the transfer still has exactly the entries the
step saw, and inserts the entries only if every account was updated. Anything less means a
concurrent writer got there first: `Contended`, the transaction rolls back, the step runs again.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Select,
    Text,
    any_,
    bindparam,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from shards.changes import Change, HoldRow, NewEntry, Posting, StepContext
from shards.compiled import Compiled, Driver
from shards.errors import HoldExpired
from shards.records import StepResult
from shards.schema import EntryKind, HoldStatus, accounts, entries, holds


class Contended(Exception):
    """A concurrent writer got there first: read again and decide again."""


ENTRY_COLUMNS = {
    "transfer_id": Text,
    "kind": Text,
    "account_id": Text,
    "amount": BigInteger,
    "marker": Boolean,
    "balance_after": BigInteger,
}

_LOCK_IN_ORDER = Compiled.of(
    select(accounts.c.account_id)
    .where(accounts.c.account_id == any_(bindparam("account_ids", type_=ARRAY(Text))))
    .order_by(accounts.c.account_id)
    .with_for_update()
)

_SWEEP = Compiled.of(
    update(holds)
    .where(
        holds.c.transfer_id == any_(bindparam("transfer_ids", type_=ARRAY(Text))),
        holds.c.status == HoldStatus.ACTIVE,
    )
    .values(status=HoldStatus.RELEASED, version=holds.c.version + 1, updated_at=func.now())
)

_HOLD_COLUMNS: tuple[ColumnElement[Any], ...] = (
    holds.c.transfer_id,
    holds.c.account_id,
    holds.c.amount,
    holds.c.status,
    holds.c.expires_at,
    (holds.c.expires_at <= func.clock_timestamp()).label("expired"),
)


@dataclass(frozen=True)
class _Written:
    posted: int
    recorded: int


@functools.cache
def _posting_and_entries(postings: int, new_entries: int) -> Compiled:
    """The guarded write of `postings` accounts and `new_entries` entries.

    Steps come in a handful of shapes (1 and 1 for a debit, 2 and 2 within a shard, ...), each
    compiled once; scalar parameters cost psycopg far less to send than arrays would.
    """
    entries_now = (
        select(func.count())
        .select_from(entries)
        .where(entries.c.transfer_id == bindparam("transfer_id", type_=Text))
        .scalar_subquery()
    )
    posted = [
        update(accounts)
        .where(
            accounts.c.account_id == bindparam(f"posting_account_id_{n}", type_=Text),
            accounts.c.version == bindparam(f"posting_version_{n}", type_=BigInteger),
            entries_now == bindparam("entries_seen", type_=BigInteger),
        )
        .values(
            balance=bindparam(f"posting_balance_{n}", type_=BigInteger),
            held=bindparam(f"posting_held_{n}", type_=BigInteger),
            status=bindparam(f"posting_status_{n}", type_=Text),
            version=accounts.c.version + 1,
            updated_at=func.now(),
        )
        .returning(accounts.c.account_id)
        .cte(f"posted_{n}")
        for n in range(postings)
    ]
    posted_count = functools.reduce(
        operator.add, [select(func.count()).select_from(cte).scalar_subquery() for cte in posted]
    )
    if not new_entries:
        return Compiled.of(select(posted_count.label("posted"), literal(0).label("recorded")))
    rows: list[Select[*tuple[Any, ...]]] = [
        select(
            *(
                bindparam(f"entry_{name}_{n}", type_=kind).label(name)
                for name, kind in ENTRY_COLUMNS.items()
            )
        )
        for n in range(new_entries)
    ]
    new_rows = (rows[0] if new_entries == 1 else union_all(*rows)).subquery("new_entry")
    recorded = (
        insert(entries)
        .from_select(list(ENTRY_COLUMNS), select(new_rows).where(posted_count == postings))
        .returning(entries.c.entry_id)
        .cte("recorded")
    )
    recorded_count = select(func.count()).select_from(recorded).scalar_subquery()
    return Compiled.of(select(posted_count.label("posted"), recorded_count.label("recorded")))


_HOLD_PLACED = Compiled.of(
    insert(holds)
    .values(
        transfer_id=bindparam("transfer_id", type_=Text),
        account_id=bindparam("account_id", type_=Text),
        amount=bindparam("amount", type_=BigInteger),
        expires_at=func.clock_timestamp()
        + func.make_interval(0, 0, 0, 0, 0, 0, bindparam("ttl_s", type_=Float)),
    )
    .returning(*_HOLD_COLUMNS)
)
_HOLD_MOVED = (
    update(holds)
    .where(
        holds.c.transfer_id == bindparam("transfer_id", type_=Text),
        holds.c.status == HoldStatus.ACTIVE,
    )
    .values(
        status=bindparam("status", type_=Text),
        version=holds.c.version + 1,
        updated_at=func.now(),
    )
    .returning(*_HOLD_COLUMNS)
)
_HOLD_TRANSITIONS = {
    False: Compiled.of(_HOLD_MOVED),
    True: Compiled.of(_HOLD_MOVED.where(holds.c.expires_at > func.clock_timestamp())),
}


async def write_change(
    connection: Driver, context: StepContext, change: Change, *, lock_first: bool
) -> tuple[tuple[StepResult, ...], HoldRow | None]:
    """Apply `change`; `lock_first` takes the rows' locks in id order (optimistic, several rows)."""
    postings = sorted(change.postings, key=lambda posting: posting.state.account_id)
    if lock_first:  # one statement updating several rows locks them in no set order: deadlocks
        ids = [posting.state.account_id for posting in postings]
        await _LOCK_IN_ORDER.run(connection, account_ids=ids)
    swept = [release for posting in postings for release in _lapsed_releases(posting)]
    new_entries = [*change.entries, *swept]
    parameters = _parameters(context, postings, new_entries)
    (written,) = await _posting_and_entries(len(postings), len(new_entries)).objects(
        connection, _Written, **parameters
    )
    if (written.posted, written.recorded) != (len(postings), len(new_entries)):
        raise Contended
    if swept:
        await _sweep(connection, [entry.transfer_id or "" for entry in swept])
    hold = await _write_hold(connection, context.transfer_id, change)
    return _results(context.transfer_id, new_entries), hold


def _parameters(
    context: StepContext, postings: list[Posting], new_entries: list[NewEntry]
) -> dict[str, object]:
    parameters: dict[str, object] = {
        "transfer_id": context.transfer_id,
        "entries_seen": len(context.prior),  # (transfer_id, kind) is unique: one entry per kind
    }
    for n, posting in enumerate(postings):
        parameters[f"posting_account_id_{n}"] = posting.state.account_id
        parameters[f"posting_version_{n}"] = posting.state.version
        parameters[f"posting_balance_{n}"] = posting.balance
        parameters[f"posting_held_{n}"] = posting.held
        parameters[f"posting_status_{n}"] = posting.status or posting.state.status
    for n, entry in enumerate(new_entries):
        parameters[f"entry_transfer_id_{n}"] = entry.transfer_id or context.transfer_id
        parameters[f"entry_kind_{n}"] = str(entry.kind)
        parameters[f"entry_account_id_{n}"] = entry.account_id
        parameters[f"entry_amount_{n}"] = entry.amount
        parameters[f"entry_marker_{n}"] = entry.marker
        parameters[f"entry_balance_after_{n}"] = entry.balance_after
    return parameters


def _lapsed_releases(posting: Posting) -> list[NewEntry]:
    """The release entries of the holds that lapsed by the database clock: the posting folds
    them out of `held` (posting.held excludes them already) and _sweep marks them released."""
    return [
        NewEntry(
            EntryKind.RELEASE,
            posting.state.account_id,
            hold.amount,
            posting.balance,
            transfer_id=hold.transfer_id,
        )
        for hold in posting.state.lapsed
    ]


async def _sweep(connection: Driver, transfer_ids: list[str]) -> None:
    if await _SWEEP.run(connection, transfer_ids=transfer_ids) != len(transfer_ids):
        raise Contended  # released by someone else since the read


def _results(transfer_id: str, new_entries: list[NewEntry]) -> tuple[StepResult, ...]:
    """The step's own entries (not the releases of other transfers' lapsed holds)."""
    return tuple(
        StepResult(
            transfer_id, str(e.kind), e.account_id, e.amount, e.balance_after, marker=e.marker
        )
        for e in new_entries
        if (e.transfer_id or transfer_id) == transfer_id
    )


async def _write_hold(connection: Driver, transfer_id: str, change: Change) -> HoldRow | None:
    if change.new_hold is not None:
        new = change.new_hold
        (placed,) = await _HOLD_PLACED.objects(
            connection,
            HoldRow,
            transfer_id=transfer_id,
            account_id=new.account_id,
            amount=new.amount,
            ttl_s=new.ttl_s,
        )
        return placed
    if change.hold_transition is None:
        return None
    transition = change.hold_transition
    moved = await _HOLD_TRANSITIONS[transition.while_unexpired].objects(
        connection, HoldRow, transfer_id=transfer_id, status=transition.status
    )
    if not moved:  # the account lock kept the status: only the clock can have moved
        raise HoldExpired(f"the hold of transfer {transfer_id} expired while it was being captured")
    return moved[0]
