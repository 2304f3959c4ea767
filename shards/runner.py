"""The step runner: each step is one short local transaction on one shard.

Every step runs the same way: read the account rows (locked under `pessimistic`, plain under
`optimistic`) and the transfer's earlier entries, let a pure plan in shards.steps decide, then
write the rows back (a compare-and-set on `version` under `optimistic`), insert the entries and
commit. A lost compare-and-set or a concurrent insert of the same (transfer_id, kind) is retried
with jittered backoff; under `pessimistic` the row lock makes that rare.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg.errors
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from shards.account_state import AccountState, read_account, write_account
from shards.changes import Change, HoldRow, NewEntry, PriorEntry, Replay, StepContext
from shards.errors import HoldExpired, SerializationFailure, VersionConflict
from shards.records import StepResult
from shards.router import ShardRouter
from shards.schema import EntryKind, HoldStatus, entries, holds
from shards.shard import Shard
from shards.steps import Step
from shards.validation import check_account_id, check_amount, check_currency, check_transfer_id

Plan = Callable[[StepContext], Change | Replay]


class LockStrategy(enum.StrEnum):
    PESSIMISTIC = "pessimistic"
    OPTIMISTIC = "optimistic"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of a contended write, with full-jitter exponential backoff."""

    attempts: int = 60
    first_backoff_s: float = 0.002
    max_backoff_s: float = 0.1

    def backoff_s(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff_s, self.first_backoff_s * 2**attempt))  # noqa: S311


@dataclass(frozen=True)
class Applied:
    results: tuple[StepResult, ...]
    hold: HoldRow | None


class _Contended(Exception):
    """A concurrent writer got there first: read again and decide again."""


def validated_step(transfer_id: str, account_id: str, amount: int, currency: str | None) -> Step:
    return Step(
        check_transfer_id(transfer_id),
        check_account_id(account_id),
        check_amount(amount),
        None if currency is None else check_currency(currency),
    )


class StepRunner:
    """Runs a plan inside one transaction on one shard, under the chosen lock strategy."""

    def __init__(
        self, router: ShardRouter, strategy: LockStrategy, retry: RetryPolicy | None = None
    ) -> None:
        self.router = router
        self.strategy = LockStrategy(strategy)
        self.retry = retry or RetryPolicy()

    async def run(
        self,
        transfer_id: str,
        account_ids: Sequence[str],
        plan: Plan,
        *,
        with_hold: bool = False,
    ) -> Applied:
        shard = self.router.shard_for(account_ids[0])
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return await self._attempt(shard, transfer_id, account_ids, plan, with_hold)
            except _Contended:
                await asyncio.sleep(self.retry.backoff_s(attempt))
        raise VersionConflict(
            f"{shard.name}: {', '.join(account_ids)} still contended after "
            f"{self.retry.attempts} attempts (transfer {transfer_id})"
        )

    async def _attempt(
        self,
        shard: Shard,
        transfer_id: str,
        account_ids: Sequence[str],
        plan: Plan,
        with_hold: bool,
    ) -> Applied:
        lock = self.strategy is LockStrategy.PESSIMISTIC
        try:
            # Optimistic reads take no lock, so they share one snapshot: a hold and the entries
            # must not be read on either side of a concurrent commit. Locked reads come after the
            # lock that every writer of this transfer's rows takes first, so they already agree.
            async with shard.begin(snapshot=not lock) as connection:
                states = {
                    account_id: await read_account(connection, account_id, lock=lock)
                    for account_id in sorted(set(account_ids))
                }
                hold = await _read_hold(connection, transfer_id) if with_hold else None
                prior = await _read_prior(connection, transfer_id)
                outcome = plan(StepContext(transfer_id, states, prior, hold))
                if isinstance(outcome, Replay):
                    return Applied(outcome.results, hold)
                return await _write(connection, transfer_id, outcome, compare_version=not lock)
        except IntegrityError as error:
            if isinstance(error.orig, psycopg.errors.UniqueViolation):
                raise _Contended from error
            raise
        except SerializationFailure as error:
            if lock:  # a deadlock under row locks is a bug in the lock order: surface it
                raise
            raise _Contended from error  # a row changed after the snapshot was taken


async def _read_prior(connection: AsyncConnection, transfer_id: str) -> dict[str, PriorEntry]:
    query = select(
        entries.c.kind,
        entries.c.account_id,
        entries.c.amount,
        entries.c.marker,
        entries.c.balance_after,
    ).where(entries.c.transfer_id == transfer_id)
    rows = (await connection.execute(query)).all()
    return {row.kind: PriorEntry(*row) for row in rows}


async def _read_hold(connection: AsyncConnection, transfer_id: str) -> HoldRow | None:
    query = select(
        holds.c.transfer_id,
        holds.c.account_id,
        holds.c.amount,
        holds.c.status,
        holds.c.expires_at,
        (holds.c.expires_at <= func.clock_timestamp()).label("expired"),
    ).where(holds.c.transfer_id == transfer_id)
    row = (await connection.execute(query)).first()
    return None if row is None else HoldRow(*row)


async def _write(
    connection: AsyncConnection, transfer_id: str, change: Change, *, compare_version: bool
) -> Applied:
    swept: list[NewEntry] = []
    for posting in sorted(change.postings, key=lambda p: p.state.account_id):
        stored = await write_account(
            connection,
            posting.state,
            balance=posting.balance,
            held=posting.held,
            status=posting.status,
            compare_version=compare_version,
        )
        if not stored:
            raise _Contended
        swept += await _sweep_lapsed(connection, posting.state, posting.balance)
    new_entries = [*change.entries, *swept]
    if new_entries:
        await connection.execute(
            insert(entries),
            [
                {
                    "transfer_id": entry.transfer_id or transfer_id,
                    "kind": entry.kind,
                    "account_id": entry.account_id,
                    "amount": entry.amount,
                    "marker": entry.marker,
                    "balance_after": entry.balance_after,
                }
                for entry in new_entries
            ],
        )
    hold = await _write_hold(connection, transfer_id, change)
    own = [e for e in new_entries if (e.transfer_id or transfer_id) == transfer_id]
    results = tuple(
        StepResult(
            transfer_id, str(e.kind), e.account_id, e.amount, e.balance_after, marker=e.marker
        )
        for e in own
    )
    return Applied(results, hold)


async def _sweep_lapsed(
    connection: AsyncConnection, state: AccountState, balance: int
) -> list[NewEntry]:
    """Release the holds that lapsed by the database clock; their release entries go with it."""
    if not state.lapsed:
        return []
    lapsed_ids = [hold.transfer_id for hold in state.lapsed]
    await connection.execute(
        update(holds)
        .where(holds.c.transfer_id.in_(lapsed_ids), holds.c.status == HoldStatus.ACTIVE)
        .values(status=HoldStatus.RELEASED, version=holds.c.version + 1, updated_at=func.now())
    )
    return [
        NewEntry(
            EntryKind.RELEASE, state.account_id, hold.amount, balance, transfer_id=hold.transfer_id
        )
        for hold in state.lapsed
    ]


async def _write_hold(
    connection: AsyncConnection, transfer_id: str, change: Change
) -> HoldRow | None:
    returning: tuple[ColumnElement[Any], ...] = (
        holds.c.transfer_id,
        holds.c.account_id,
        holds.c.amount,
        holds.c.status,
        holds.c.expires_at,
        (holds.c.expires_at <= func.clock_timestamp()).label("expired"),
    )
    if change.new_hold is not None:
        new = change.new_hold
        expires_at = func.clock_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, new.ttl_s)
        statement = (
            insert(holds)
            .values(
                transfer_id=transfer_id,
                account_id=new.account_id,
                amount=new.amount,
                expires_at=expires_at,
            )
            .returning(*returning)
        )
        return HoldRow(*(await connection.execute(statement)).one())
    return await _transition_hold(connection, transfer_id, change, returning)


async def _transition_hold(
    connection: AsyncConnection,
    transfer_id: str,
    change: Change,
    returning: tuple[ColumnElement[Any], ...],
) -> HoldRow | None:
    if change.hold_transition is None:
        return None
    transition = change.hold_transition
    transition_statement = (
        update(holds)
        .where(holds.c.transfer_id == transfer_id, holds.c.status == HoldStatus.ACTIVE)
        .values(status=transition.status, version=holds.c.version + 1, updated_at=func.now())
        .returning(*returning)
    )
    if transition.while_unexpired:
        transition_statement = transition_statement.where(
            holds.c.expires_at > func.clock_timestamp()
        )
    row = (await connection.execute(transition_statement)).first()
    if row is None:  # the account lock kept the status: only the clock can have moved
        raise HoldExpired(f"the hold of transfer {transfer_id} expired while it was being captured")
    return HoldRow(*row)
