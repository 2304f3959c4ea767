"""Batched saga steps: many transfers' debits (or credits, fences, refunds) in one transaction
per shard, each step decided by the single step's own `plan_*`.

The steps are grouped by their account's shard and the shards run concurrently. On each shard one
transaction reads the accounts (locked in account-id order under `pessimistic`) and every step's
earlier entries (batch_reads.py), decides the steps in input order against the accounts as the
previous steps left them (two debits of one account: the second sees the first's balance), then
writes every row and entry in one guarded statement (batch_writes.py). A step refused for a
business reason writes nothing and leaves the others alone; its error is its result.

A re-run (the task was lost after the commit) finds each applied step's entry and replays it, as a
single step would: what it decides is what the lost run decided.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from shards.engine.account_state import AccountState
from shards.engine.batch_reads import BatchEntry, ShardRead, read_batch
from shards.engine.batch_writes import BatchedAccountRow, write_batch
from shards.engine.changes import Change, PriorEntry, Replay, StepContext
from shards.engine.decisions import Step
from shards.engine.openings import (
    lock_openings,
    require_opening_locks,
    unopened_accounts,
    with_opening_locks,
)
from shards.engine.runner import ConflictRetry, conflicts_contended, validated_step
from shards.engine.writes import lapsed_releases, step_results
from shards.errors import BusinessError
from shards.lock_strategy import LockStrategy
from shards.records import BatchStep, StepResult
from shards.router import ShardRouter, shard_index
from shards.shard import Shard

BatchPlan = Callable[[StepContext, Step], Change | Replay]
Outcome = StepResult | BusinessError


class _Routed(NamedTuple):
    """A valid step, with its place in the caller's list."""

    position: int
    step: Step
    fingerprint: str


@dataclass
class _Decided:
    """What one shard's steps decided: their outcomes, and the rows and entries to write."""

    outcomes: list[Outcome] = field(default_factory=list)
    rows: dict[str, BatchedAccountRow] = field(default_factory=dict)
    new_entries: list[BatchEntry] = field(default_factory=list)
    unopened: set[str] = field(default_factory=set)  # marked without a row (engine.openings)


class BatchRunner:
    """Runs one `plan_*` over many steps: one transaction per shard, shards concurrently."""

    def __init__(self, router: ShardRouter, strategy: LockStrategy, retry: ConflictRetry) -> None:
        self.router = router
        self.strategy = strategy
        self.retry = retry

    async def run(self, steps: Sequence[BatchStep], plan: BatchPlan) -> list[Outcome]:
        """One outcome per step, in input order. Invalid input is that step's error; an
        infrastructure error raises once every shard has finished (committed or rolled back)."""
        outcomes: list[Outcome | None] = [None] * len(steps)
        by_shard: dict[int, list[_Routed]] = defaultdict(list)
        for index, batch_step in enumerate(steps):
            try:
                step = validated_step(
                    batch_step.transfer_id,
                    batch_step.account_id,
                    batch_step.amount,
                    batch_step.currency,
                )
            except BusinessError as error:
                outcomes[index] = error
                continue
            # the id was checked just above: routed without the router's second check
            shard = shard_index(step.account_id, len(self.router.shards))
            by_shard[shard].append(_Routed(index, step, batch_step.fingerprint))
        shards = list(by_shard.items())
        done = await asyncio.gather(
            *(self._on_shard(self.router.shards[shard], routed, plan) for shard, routed in shards),
            return_exceptions=True,
        )
        for (_, routed), shard_outcomes in zip(shards, done, strict=True):
            if isinstance(shard_outcomes, BaseException):
                raise shard_outcomes
            for item, outcome in zip(routed, shard_outcomes, strict=True):
                outcomes[item.position] = outcome
        finished = [outcome for outcome in outcomes if outcome is not None]
        if len(finished) != len(steps):
            raise RuntimeError("a batched step was left without an outcome")
        return finished

    async def _on_shard(
        self, shard: Shard, routed: list[_Routed], plan: BatchPlan
    ) -> list[Outcome]:
        return await self.retry.until_uncontended(
            lambda: with_opening_locks(
                lambda opening: self._attempt(shard, routed, plan, opening=opening)
            ),
            f"{shard.name}: a batch of {len(routed)} steps",
        )

    async def _attempt(
        self, shard: Shard, routed: list[_Routed], plan: BatchPlan, *, opening: frozenset[str]
    ) -> list[Outcome]:
        """One transaction; with `opening` accounts, their opening locks first and reads in READ
        COMMITTED under row locks, whatever the strategy (see shards.engine.openings)."""
        lock = bool(opening) or self.strategy is LockStrategy.PESSIMISTIC
        transfer_ids = sorted({item.step.transfer_id for item in routed})
        with conflicts_contended(lock=lock):
            async with shard.driver_transaction(snapshot=not lock) as connection:
                if opening:
                    await lock_openings(connection, opening)
                read = await read_batch(
                    connection,
                    [item.step.account_id for item in routed],
                    transfer_ids,
                    lock=lock,
                )
                decided = decide_batch(routed, read, plan)
                require_opening_locks(decided.unopened, opening)
                if decided.rows or decided.new_entries:
                    await write_batch(
                        connection,
                        list(decided.rows.values()),
                        decided.new_entries,
                        transfer_ids=transfer_ids,
                        entries_seen=read.entries_seen,
                        lock_first=not lock and len(decided.rows) > 1,
                    )
                return decided.outcomes


def decide_batch(routed: list[_Routed], read: ShardRead, plan: BatchPlan) -> _Decided:
    """Decide each step in order against the accounts and entries as the earlier steps left
    them: the context a single step would read had the earlier ones committed first."""
    decided = _Decided()
    states: dict[str, AccountState] = dict(read.states)
    prior: defaultdict[str, dict[str, PriorEntry]] = defaultdict(dict)
    prior.update({transfer_id: dict(found) for transfer_id, found in read.prior.items()})
    for item in routed:
        step = item.step
        context = StepContext(
            step.transfer_id,
            {step.account_id: states.get(step.account_id)},
            dict(prior[step.transfer_id]),
            fingerprint=item.fingerprint,
        )
        try:
            outcome = plan(context, step)
        except BusinessError as error:
            decided.outcomes.append(error)
            continue
        if isinstance(outcome, Replay):
            decided.outcomes.append(outcome.results[0])
            continue
        decided.outcomes.append(_apply(decided, states, prior, read, context, outcome))
    return decided


def _apply(
    decided: _Decided,
    states: dict[str, AccountState],
    prior: defaultdict[str, dict[str, PriorEntry]],
    read: ShardRead,
    context: StepContext,
    change: Change,
) -> StepResult:
    """Fold `change` into the batch's rows, entries and in-memory state; the step's result."""
    if change.new_hold is not None or change.hold_transition is not None:
        raise RuntimeError("batched steps move no hold; this plan asked to")
    new_entries = list(change.entries)
    decided.unopened.update(unopened_accounts(change))
    for write in change.account_writes:
        account_id = write.state.account_id
        status = write.status or write.state.status
        first = read.states[account_id]
        earlier = decided.rows.get(account_id)
        decided.rows[account_id] = BatchedAccountRow(
            first,
            write.balance,
            write.held,
            status,
            1 if earlier is None else earlier.steps + 1,
        )
        # lapsed holds are folded out (and released) by the account's first write only
        new_entries += lapsed_releases(write)
        states[account_id] = AccountState(
            account_id, first.currency, write.balance, write.held, status, first.version, ()
        )
    for entry in new_entries:
        transfer_id = entry.transfer_id or context.transfer_id
        # the sweep's releases belong to other transfers, whose requests this step does not know
        ours = transfer_id == context.transfer_id
        recorded = BatchEntry(
            transfer_id,
            str(entry.kind),
            entry.account_id,
            entry.amount,
            entry.marker,
            entry.balance_after,
            context.fingerprint if ours else None,
        )
        decided.new_entries.append(recorded)
        prior[transfer_id][recorded.kind] = recorded.prior()
    return step_results(context.transfer_id, new_entries)[0]
