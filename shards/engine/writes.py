"""Writing what a step decided: account rows and entries in one statement, then any hold.

The statement updates every account written (new absolute balance and held, `version + 1`) only if
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

from shards.compiled import Compiled, Driver
from shards.engine.changes import AccountWrite, Change, NewEntry, StepContext
from shards.engine.hold_writes import release_lapsed, write_hold
from shards.records import HoldView, StepResult
from shards.schema import EntryKind, accounts, entries


class Contended(Exception):
    """A concurrent writer got there first: read again and decide again."""


ENTRY_COLUMNS: dict[str, Any] = {  # an entry as a write inserts it, with its SQL types
    "transfer_id": Text,
    "kind": Text,
    "account_id": Text,
    "amount": BigInteger,
    "marker": Boolean,
    "balance_after": BigInteger,
    "fingerprint": Text,
}

_LOCK_IN_ORDER = Compiled.of(
    select(accounts.c.account_id)
    .where(accounts.c.account_id == any_(bindparam("account_ids", type_=ARRAY(Text))))
    .order_by(accounts.c.account_id)
    .with_for_update()
)


@dataclass(frozen=True)
class _Written:
    updated: int
    recorded: int


@functools.cache
def _accounts_and_entries(account_writes: int, new_entries: int) -> Compiled:
    """The guarded write of `account_writes` accounts and `new_entries` entries.

    Steps come in a handful of shapes (1 and 1 for a debit, 2 and 2 within a shard, ...), each
    compiled once; scalar parameters cost psycopg far less to send than arrays would.
    """
    entries_now = (
        select(func.count())
        .select_from(entries)
        .where(entries.c.transfer_id == bindparam("transfer_id", type_=Text))
        .scalar_subquery()
    )
    updated = [
        update(accounts)
        .where(
            accounts.c.account_id == bindparam(f"account_id_{n}", type_=Text),
            accounts.c.version == bindparam(f"account_version_{n}", type_=BigInteger),
            entries_now == bindparam("entries_seen", type_=BigInteger),
        )
        .values(
            balance=bindparam(f"account_balance_{n}", type_=BigInteger),
            held=bindparam(f"account_held_{n}", type_=BigInteger),
            status=bindparam(f"account_status_{n}", type_=Text),
            version=accounts.c.version + 1,
            updated_at=func.now(),
        )
        .returning(accounts.c.account_id)
        .cte(f"updated_{n}")
        for n in range(account_writes)
    ]
    counts = [select(func.count()).select_from(cte).scalar_subquery() for cte in updated]
    updated_count = functools.reduce(operator.add, counts) if counts else literal(0)
    # Markers on accounts not opened yet write no row: the entries guard goes on the insert.
    guard = (
        updated_count == account_writes
        if account_writes
        else entries_now == bindparam("entries_seen", type_=BigInteger)
    )
    if not new_entries:
        return Compiled.of(select(updated_count.label("updated"), literal(0).label("recorded")))
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
        .from_select(list(ENTRY_COLUMNS), select(new_rows).where(guard))
        .returning(entries.c.entry_id)
        .cte("recorded")
    )
    recorded_count = select(func.count()).select_from(recorded).scalar_subquery()
    return Compiled.of(select(updated_count.label("updated"), recorded_count.label("recorded")))


async def write_change(
    connection: Driver, context: StepContext, change: Change, *, lock_first: bool
) -> tuple[tuple[StepResult, ...], HoldView | None]:
    """Apply `change`; `lock_first` takes the rows' locks in id order (optimistic, several rows)."""
    account_writes = sorted(change.account_writes, key=lambda write: write.state.account_id)
    if lock_first:  # one statement updating several rows locks them in no set order: deadlocks
        await lock_in_order(connection, [write.state.account_id for write in account_writes])
    swept = [release for write in account_writes for release in lapsed_releases(write)]
    new_entries = [*change.entries, *swept]
    parameters = _parameters(context, account_writes, new_entries)
    (written,) = await _accounts_and_entries(len(account_writes), len(new_entries)).objects(
        connection, _Written, **parameters
    )
    if (written.updated, written.recorded) != (len(account_writes), len(new_entries)):
        raise Contended
    lapsed = [gone.transfer_id for write in account_writes for gone in write.state.lapsed]
    if lapsed and await release_lapsed(connection, lapsed) != len(lapsed):
        raise Contended  # released by someone else since the read
    hold = await write_hold(connection, context.transfer_id, change)
    return step_results(context.transfer_id, new_entries), hold


async def lock_in_order(connection: Driver, account_ids: list[str]) -> None:
    """Lock the accounts' rows in account-id order: the one order every writer of several rows
    takes them in, so that no two writers wait on each other in a cycle."""
    await _LOCK_IN_ORDER.run(connection, account_ids=account_ids)


def _parameters(
    context: StepContext, account_writes: list[AccountWrite], new_entries: list[NewEntry]
) -> dict[str, object]:
    parameters: dict[str, object] = {
        "transfer_id": context.transfer_id,
        "entries_seen": len(context.prior),  # (transfer_id, kind) is unique: one entry per kind
    }
    for n, write in enumerate(account_writes):
        parameters[f"account_id_{n}"] = write.state.account_id
        parameters[f"account_version_{n}"] = write.state.version
        parameters[f"account_balance_{n}"] = write.balance
        parameters[f"account_held_{n}"] = write.held
        parameters[f"account_status_{n}"] = write.status or write.state.status
    for n, entry in enumerate(new_entries):
        parameters[f"entry_transfer_id_{n}"] = entry.transfer_id or context.transfer_id
        parameters[f"entry_kind_{n}"] = str(entry.kind)
        parameters[f"entry_account_id_{n}"] = entry.account_id
        parameters[f"entry_amount_{n}"] = entry.amount
        parameters[f"entry_marker_{n}"] = entry.marker
        parameters[f"entry_balance_after_{n}"] = entry.balance_after
        # the sweep's releases belong to other transfers, whose requests this step does not know
        ours = entry.transfer_id in (None, context.transfer_id)
        parameters[f"entry_fingerprint_{n}"] = context.fingerprint if ours else None
    return parameters


def lapsed_releases(write: AccountWrite) -> list[NewEntry]:
    """The release entries of the holds that lapsed by the database clock: the write folds
    them out of `held` (write.held excludes them already) and release_lapsed marks them."""
    return [
        NewEntry(
            EntryKind.RELEASE,
            write.state.account_id,
            hold.amount,
            write.balance,
            transfer_id=hold.transfer_id,
        )
        for hold in write.state.lapsed
    ]


def step_results(transfer_id: str, new_entries: list[NewEntry]) -> tuple[StepResult, ...]:
    """The step's own entries (not the releases of other transfers' lapsed holds)."""
    return tuple(
        StepResult(
            transfer_id, str(e.kind), e.account_id, e.amount, e.balance_after or 0, marker=e.marker
        )
        for e in new_entries
        if (e.transfer_id or transfer_id) == transfer_id
    )
