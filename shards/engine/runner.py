"""The step runner: each step is one short local transaction on one shard.

Every step runs the same way: read the account rows (locked under `pessimistic`, plain under
`optimistic`) with the transfer's earlier entries in one statement (reads.py), let a pure plan in
decisions.py decide, then write the rows back and insert the entries in one guarded statement
(writes.py) and commit. A lost compare-and-set, entries that changed under the
step, or a concurrent insert of the same (transfer_id, kind) is retried with jittered backoff;
under `pessimistic` the row lock makes that rare.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import psycopg.errors

from shards.compiled import Driver
from shards.engine.changes import Change, Replay, StepContext
from shards.engine.decisions import Step
from shards.engine.openings import (
    lock_openings,
    require_opening_locks,
    unopened_accounts,
    with_opening_locks,
)
from shards.engine.reads import read_context, read_prior
from shards.engine.writes import Contended, write_change
from shards.errors import BusinessError, SerializationFailure, VersionConflict
from shards.lock_strategy import LockStrategy
from shards.records import HoldView, StepResult
from shards.router import ShardRouter
from shards.shard import Shard
from shards.validation import check_account_id, check_amount, check_currency, check_transfer_id

Plan = Callable[[StepContext], Change | Replay]
T = TypeVar("T")


@dataclass(frozen=True)
class ConflictRetry:
    """Bounded retries of a contended write, with full-jitter exponential backoff."""

    attempts: int = 60
    first_backoff_s: float = 0.002
    max_backoff_s: float = 0.1

    def backoff_s(self, attempt: int) -> float:
        """The pause before retry `attempt`: uniform up to an exponential bound (full jitter)."""
        return random.uniform(0, min(self.max_backoff_s, self.first_backoff_s * 2**attempt))  # noqa: S311

    async def until_uncontended(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        """Run `attempt` (one transaction) until it is not `Contended`; VersionConflict after
        `attempts` tries. `what` names the rows in that error."""
        for number in range(1, self.attempts + 1):
            try:
                return await attempt()
            except Contended:
                await asyncio.sleep(self.backoff_s(number))
        raise VersionConflict(f"{what} still contended after {self.attempts} attempts")


@contextmanager
def conflicts_contended(*, lock: bool) -> Iterator[None]:
    """Around one transaction: a conflict with a concurrent writer becomes `Contended` (retry).

    A concurrent insert of the same (transfer_id, kind) is one under either strategy; a
    serialization failure only under `optimistic` (a row changed after the snapshot). Under row
    locks a deadlock is a bug in the lock order: it is surfaced, not retried.
    """
    try:
        yield
    except psycopg.errors.UniqueViolation as error:  # the same step, committed meanwhile
        raise Contended from error
    except SerializationFailure as error:
        if lock:
            raise
        raise Contended from error


@dataclass(frozen=True)
class Applied:
    """What a step wrote or found, and the transfer's hold when the step asked for it."""

    results: tuple[StepResult, ...]
    hold: HoldView | None


def validated_step(transfer_id: str, account_id: str, amount: int, currency: str | None) -> Step:
    """A step's request, each field checked: invalid input is refused before any read."""
    return Step(
        check_transfer_id(transfer_id),
        check_account_id(account_id),
        check_amount(amount),
        None if currency is None else check_currency(currency),
    )


class StepRunner:
    """Runs a plan inside one transaction on one shard, under the chosen lock strategy."""

    def __init__(
        self, router: ShardRouter, strategy: LockStrategy, retry: ConflictRetry | None = None
    ) -> None:
        self.router = router
        self.strategy = LockStrategy(strategy)
        self.retry = retry or ConflictRetry()

    async def run(
        self,
        transfer_id: str,
        account_ids: Sequence[str],
        plan: Plan,
        *,
        with_hold: bool = False,
        fingerprint: str | None = None,
    ) -> Applied:
        """`fingerprint`: the digest of the request the step belongs to (see StepContext)."""
        shard = self.router.shard_for(account_ids[0])
        return await self.retry.until_uncontended(
            lambda: with_opening_locks(
                lambda opening: self._attempt(
                    shard, transfer_id, account_ids, plan, with_hold, fingerprint, opening=opening
                )
            ),
            f"{shard.name}: {', '.join(account_ids)} (transfer {transfer_id})",
        )

    async def _attempt(
        self,
        shard: Shard,
        transfer_id: str,
        account_ids: Sequence[str],
        plan: Plan,
        with_hold: bool,
        fingerprint: str | None,
        *,
        opening: frozenset[str],
    ) -> Applied:
        """One transaction; with `opening` accounts, their opening locks first and reads in READ
        COMMITTED under row locks, whatever the strategy (see shards.engine.openings)."""
        lock = bool(opening) or self.strategy is LockStrategy.PESSIMISTIC
        with conflicts_contended(lock=lock):
            # Optimistic reads take no lock, so they share one snapshot: a hold and the entries
            # must not be read on either side of a concurrent commit.
            async with shard.driver_transaction(snapshot=not lock) as connection:
                if opening:
                    await lock_openings(connection, opening)
                context = await read_context(
                    connection,
                    transfer_id,
                    account_ids,
                    lock=lock,
                    with_hold=with_hold,
                    fingerprint=fingerprint,
                )
                context, outcome = await _decide(connection, plan, context, confirm=lock)
                if isinstance(outcome, Replay):
                    return Applied(outcome.results, context.hold)
                require_opening_locks(unopened_accounts(outcome), opening)
                several = len(outcome.account_writes) > 1
                results, hold = await write_change(
                    connection, context, outcome, lock_first=several and not lock
                )
                return Applied(outcome.replayed + results, hold)


async def _decide(
    connection: Driver, plan: Plan, context: StepContext, *, confirm: bool
) -> tuple[StepContext, Change | Replay]:
    """Run the plan; with `confirm`, a refusal stands only if fresh entries still refuse it.

    Under row locks the entries came from the locking statement's snapshot, older than the lock
    when it had to wait (see shards.engine.reads): a concurrent replay of this very step may then
    look like, say, a debit beyond the funds. A write is guarded instead (shards.engine.writes).
    """
    try:
        return context, plan(context)
    except BusinessError:
        if not confirm:
            raise
        fresh = await read_prior(connection, context.transfer_id)
        if fresh == context.prior:
            raise
    context = context._replace(prior=fresh)
    return context, plan(context)
