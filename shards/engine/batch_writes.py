"""Writing what a batch decided on one shard: every account row and every entry, one statement.

The same guard as a single step's write (shards.engine.writes), at the scale of the batch: each
account gets its final balance and held, its version grown by the number of steps that posted to
it, only if its version is still the one read and the batch's transfers still have exactly the
entries read; the entries are inserted only if every account was updated. Anything less means a
concurrent writer got there first: `Contended`, the transaction rolls back, the batch runs again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Text,
    any_,
    bindparam,
    column,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from shards.compiled import Compiled, Driver
from shards.engine.account_state import AccountState
from shards.engine.batch_reads import BatchEntry
from shards.engine.hold_writes import release_lapsed
from shards.engine.writes import ENTRY_COLUMNS, Contended, lock_in_order
from shards.schema import accounts, entries

_ROW_COLUMNS: dict[str, Any] = {
    "account_id": Text,
    "balance": BigInteger,
    "held": BigInteger,
    "status": Text,
    "version_seen": BigInteger,
    "version_new": BigInteger,
}


def _unnest(name: str, columns: dict[str, Any]) -> Any:
    """Rows from one array parameter per column (`{name}_{column}`): one statement for the
    whole batch, whatever its size, compiled once."""
    arrays = [bindparam(f"{name}_{key}", type_=ARRAY(kind)) for key, kind in columns.items()]
    named = [column(key, kind) for key, kind in columns.items()]
    return func.unnest(*arrays).table_valued(*named).render_derived(name=name)


def _write_statement() -> Compiled:
    account_row = _unnest("account_row", _ROW_COLUMNS)
    new_entry = _unnest("new_entry", ENTRY_COLUMNS)
    entries_now = (
        select(func.count())
        .select_from(entries)
        .where(entries.c.transfer_id == any_(bindparam("transfer_ids", type_=ARRAY(Text))))
        .scalar_subquery()
    )
    entries_seen = bindparam("entries_seen", type_=BigInteger)
    rows_written = bindparam("rows_written", type_=BigInteger)
    posted = (
        update(accounts)
        .where(
            accounts.c.account_id == account_row.c.account_id,
            accounts.c.version == account_row.c.version_seen,
            entries_now == entries_seen,
        )
        .values(
            balance=account_row.c.balance,
            held=account_row.c.held,
            status=account_row.c.status,
            version=account_row.c.version_new,
            updated_at=func.now(),
        )
        .returning(accounts.c.account_id)
        .cte("posted")
    )
    posted_count = select(func.count()).select_from(posted).scalar_subquery()
    recorded = (
        insert(entries)
        .from_select(
            list(ENTRY_COLUMNS),
            select(*(new_entry.c[key] for key in ENTRY_COLUMNS)).where(
                posted_count == rows_written,
                # markers on accounts not opened yet write no row: then the guard is here
                (rows_written > 0) | (entries_now == entries_seen),
            ),
        )
        .returning(entries.c.entry_id)
        .cte("recorded")
    )
    recorded_count = select(func.count()).select_from(recorded).scalar_subquery()
    return Compiled.of(select(posted_count.label("posted"), recorded_count.label("recorded")))


_WRITE = _write_statement()


class BatchedAccountRow(NamedTuple):
    """An account's row after the batch's steps on it: `steps` of them wrote to it."""

    state: AccountState  # as read: its version is the one compared
    balance: int
    held: int
    status: str
    steps: int


@dataclass(frozen=True)
class _Written:
    posted: int
    recorded: int


async def write_batch(
    connection: Driver,
    rows: list[BatchedAccountRow],
    new_entries: list[BatchEntry],
    *,
    transfer_ids: list[str],
    entries_seen: int,
    lock_first: bool,
) -> None:
    """Write the rows and entries; `lock_first` takes the rows' locks in id order (optimistic).

    `entries_seen` is how many entries `transfer_ids` had when read. Entries go in in the
    order the steps were decided: an account's entries keep the order of its balances.
    """
    rows = sorted(rows, key=lambda row: row.state.account_id)
    if lock_first:  # one statement updating several rows locks them in no set order: deadlocks
        await lock_in_order(connection, [row.state.account_id for row in rows])
    (written,) = await _WRITE.objects(
        connection,
        _Written,
        transfer_ids=transfer_ids,
        entries_seen=entries_seen,
        rows_written=len(rows),
        **_row_arrays(rows),
        **_entry_arrays(new_entries),
    )
    if (written.posted, written.recorded) != (len(rows), len(new_entries)):
        raise Contended
    lapsed = [hold.transfer_id for row in rows for hold in row.state.lapsed]
    if lapsed and await release_lapsed(connection, lapsed) != len(lapsed):
        raise Contended  # released by someone else since the read


def _row_arrays(rows: list[BatchedAccountRow]) -> dict[str, list[Any]]:
    return {
        "account_row_account_id": [row.state.account_id for row in rows],
        "account_row_balance": [row.balance for row in rows],
        "account_row_held": [row.held for row in rows],
        "account_row_status": [row.status for row in rows],
        "account_row_version_seen": [row.state.version for row in rows],
        "account_row_version_new": [row.state.version + row.steps for row in rows],
    }


def _entry_arrays(new_entries: list[BatchEntry]) -> dict[str, list[Any]]:
    return {
        f"new_entry_{key}": [getattr(entry, key) for entry in new_entries] for key in ENTRY_COLUMNS
    }
