"""What a batch of steps reads on one shard before it decides: its accounts, every step's
earlier entries, and the holds that lapsed on accounts with money on hold.

Under `pessimistic` the first statement locks the account rows in account-id order (the order of
every writer of several rows: no deadlock). The entries are read by the next statement, whose
snapshot is taken after the locks were granted: unlike a single step's combined read (see
shards.engine.reads), they cannot miss an entry committed by a writer the lock waited for. Under
`optimistic` every read of the attempt shares one snapshot instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple

from psycopg.rows import args_row
from sqlalchemy import Text, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

from shards.compiled import Compiled, Driver
from shards.engine.account_state import ACCOUNT_COLUMN_NAMES, AccountState, LapsedHold
from shards.engine.changes import PriorEntry
from shards.engine.reads import LapsedOnAccount, lapsed_holds
from shards.schema import accounts, entries, holds

_ACCOUNT_IDS = bindparam("account_ids", type_=ARRAY(Text))


class BatchEntry(NamedTuple):
    """An entry of one of the batch's transfers: read from the shard, or decided by the batch."""

    transfer_id: str
    kind: str
    account_id: str
    amount: int
    marker: bool
    balance_after: int | None
    fingerprint: str | None

    def prior(self) -> PriorEntry:
        """The entry as a step's context carries it (under its transfer id)."""
        return PriorEntry(
            self.kind,
            self.account_id,
            self.amount,
            self.marker,
            self.balance_after,
            self.fingerprint,
        )


def _accounts(*, lock: bool) -> Compiled:
    query = (
        select(*(accounts.c[name] for name in ACCOUNT_COLUMN_NAMES))  # AccountState's order
        .where(accounts.c.account_id == any_(_ACCOUNT_IDS))
        .order_by(accounts.c.account_id)  # row locks are taken in this order
    )
    return Compiled.of(query.with_for_update() if lock else query)


_ACCOUNTS = {lock: _accounts(lock=lock) for lock in (True, False)}
_ENTRIES = Compiled.of(
    select(
        entries.c.transfer_id,
        entries.c.kind,
        entries.c.account_id,
        entries.c.amount,
        entries.c.marker,
        entries.c.balance_after,
        entries.c.fingerprint,
    ).where(entries.c.transfer_id == any_(bindparam("transfer_ids", type_=ARRAY(Text))))
)
_LAPSED = lapsed_holds(holds.c.account_id == any_(_ACCOUNT_IDS))


@dataclass(frozen=True)
class ShardRead:
    """A batch's inputs on one shard: the accounts that exist, and each transfer's entries
    (transfer id -> kind -> entry); `entries_seen` counts those entries (see batch_writes)."""

    states: dict[str, AccountState]
    prior: defaultdict[str, dict[str, PriorEntry]]
    entries_seen: int


async def read_batch(
    connection: Driver, account_ids: Collection[str], transfer_ids: Collection[str], *, lock: bool
) -> ShardRead:
    """The batch's accounts (locked first under `lock`), then its transfers' entries."""
    read = await _ACCOUNTS[lock].rows(
        connection, args_row(_unlapsed), account_ids=sorted(set(account_ids))
    )
    found = await _ENTRIES.objects(connection, BatchEntry, transfer_ids=sorted(set(transfer_ids)))
    prior: defaultdict[str, dict[str, PriorEntry]] = defaultdict(dict)
    for entry in found:
        prior[entry.transfer_id][entry.kind] = entry.prior()
    states = {state.account_id: state for state in read}
    lapsed = await _lapsed(connection, [state.account_id for state in read if state.held > 0])
    for account_id, holds_lapsed in lapsed.items():
        states[account_id] = states[account_id]._replace(lapsed=tuple(holds_lapsed))
    return ShardRead(states, prior, len(found))


def _unlapsed(
    account_id: str, currency: str, balance: int, held: int, status: str, version: int
) -> AccountState:
    """An account row (ACCOUNT_COLUMN_NAMES) as its state, before its lapsed holds are read."""
    return AccountState(account_id, currency, balance, held, status, version, ())


async def _lapsed(connection: Driver, held_account_ids: list[str]) -> dict[str, list[LapsedHold]]:
    """Only an account with money on hold can have a hold that lapsed: most batches skip this."""
    lapsed: dict[str, list[LapsedHold]] = defaultdict(list)
    if held_account_ids:
        found = await _LAPSED.objects(connection, LapsedOnAccount, account_ids=held_account_ids)
        for row in found:
            lapsed[row.account_id].append(row.hold())
    return lapsed
