"""The shard layer's public operations: accounts, saga steps, holds and queries."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql import Select

from shards.claims import claim, claim_many, compensated, end_claims
from shards.engine.batches import BatchRunner
from shards.engine.decisions import (
    Step,
    plan_credit,
    plan_debit,
    plan_fence_credit,
    plan_hold,
    plan_post,
    plan_refund,
    plan_settled_by_hand,
    plan_status,
    plan_transfer_within_shard,
    plan_void,
)
from shards.engine.hold_expiry import HOLD_COLUMNS, LAPSED
from shards.engine.runner import Applied, ConflictRetry, Plan, StepRunner, validated_step
from shards.errors import (
    AccountAlreadyExists,
    AccountNotFound,
    BusinessError,
    InvalidTtl,
    RouteChanged,
    SameAccount,
)
from shards.fingerprints import fingerprint_of
from shards.lock_strategy import LockStrategy
from shards.records import AccountView, BatchStep, Ending, HoldView, StepResult
from shards.router import ShardRouter
from shards.schema import AccountStatus, EntryKind, HoldStatus, accounts, holds
from shards.statements import StatementPage, read_statement
from shards.validation import (
    MAX_HOLD_TTL_S,
    check_account_id,
    check_amount,
    check_currency,
    check_transfer_id,
)

T = TypeVar("T")


def _by_shard(router: ShardRouter, keys: Sequence[str], items: Sequence[T]) -> dict[int, list[T]]:
    """`items` grouped by the shard each one's key (an account or transfer id) routes to."""
    groups: dict[int, list[T]] = defaultdict(list)
    for key, item in zip(keys, items, strict=True):
        groups[router.index_for(key)].append(item)
    return groups


def _one(applied: Applied) -> StepResult:
    return applied.results[0]


def _account_views() -> Select[Any]:
    """Accounts as users see them: `held` counts only holds unexpired by the shard's clock, so
    held + available = balance even before a lapsed hold is folded out of the `held` column."""
    live_held = cast(
        select(func.coalesce(func.sum(holds.c.amount), 0))
        .where(
            holds.c.account_id == accounts.c.account_id,
            holds.c.status == HoldStatus.ACTIVE,
            ~LAPSED,
        )
        .scalar_subquery(),
        BigInteger,
    )
    return select(
        accounts.c.account_id,
        accounts.c.currency,
        accounts.c.balance,
        live_held.label("held"),
        (accounts.c.balance - live_held).label("available"),
        accounts.c.status,
        accounts.c.version,
    )


class Ledger:
    """Accounts spread over shards; every method is one local transaction on one shard."""

    def __init__(
        self,
        router: ShardRouter,
        strategy: LockStrategy | str = LockStrategy.PESSIMISTIC,
        retry: ConflictRetry | None = None,
    ) -> None:
        self.router = router
        self.runner = StepRunner(router, LockStrategy(strategy), retry)
        self.batches = BatchRunner(router, self.runner.strategy, self.runner.retry)

    @property
    def strategy(self) -> LockStrategy:
        """How steps guard their rows: pessimistic (row locks) or optimistic (compare-and-set)."""
        return self.runner.strategy

    # accounts -----------------------------------------------------------------------------

    async def open_account(self, account_id: str, currency: str) -> AccountView:
        """Open an empty account; opening it again with the same currency changes nothing."""
        check_account_id(account_id)
        check_currency(currency)
        shard = self.router.shard_for(account_id)
        async with shard.begin() as connection:
            await connection.execute(
                pg_insert(accounts)
                .values(account_id=account_id, currency=currency)
                .on_conflict_do_nothing(index_elements=[accounts.c.account_id])
            )
        view = await self.get_account(account_id)
        if view.currency != currency:
            raise AccountAlreadyExists(f"account {account_id} exists in {view.currency}")
        return view

    async def get_account(self, account_id: str) -> AccountView:
        """The account as users see it (held judged live); AccountNotFound if it does not exist."""
        check_account_id(account_id)
        shard = self.router.shard_for(account_id)
        query = _account_views().where(accounts.c.account_id == account_id)
        async with shard.begin() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            raise AccountNotFound(f"account {account_id} does not exist")
        return AccountView(**row._asdict(), shard=shard.index)

    async def list_accounts(self, limit: int = 1000) -> list[AccountView]:
        """Up to `limit` accounts of every shard, in account id order."""
        query = _account_views().order_by(accounts.c.account_id).limit(limit)
        views: list[AccountView] = []
        for shard in self.router.shards:
            async with shard.begin() as connection:
                rows = (await connection.execute(query)).all()
            views += [AccountView(**row._asdict(), shard=shard.index) for row in rows]
        return sorted(views, key=lambda view: view.account_id)[:limit]

    async def statement(
        self, account_id: str, *, limit: int = 100, before: str | None = None
    ) -> StatementPage:
        """The account's entries newest first, `limit` at a time: pass a page's `next_cursor`
        as `before` for the next one (see shards.statements)."""
        return await read_statement(self.router, account_id, limit=limit, before=before)

    async def set_status(self, account_id: str, status: AccountStatus) -> None:
        """Freeze, unfreeze or close an account; closing needs it empty, with no live hold."""
        check_account_id(account_id)
        await self.runner.run(
            f"status-{account_id}"[:64],
            [account_id],
            lambda ctx: plan_status(ctx, account_id, status),
        )

    async def deposit(
        self, transfer_id: str, account_id: str, amount: int, currency: str | None = None
    ) -> StepResult:
        """Put money into an account from outside the ledger; applied once per transfer id."""
        step = validated_step(transfer_id, account_id, amount, currency)
        digest = fingerprint_of(EntryKind.DEPOSIT, account_id, amount, currency)
        return _one(
            await self._run(step, lambda ctx: plan_credit(ctx, step, EntryKind.DEPOSIT), digest)
        )

    async def withdraw(
        self, transfer_id: str, account_id: str, amount: int, currency: str | None = None
    ) -> StepResult:
        """Take money out of an account to outside the ledger; InsufficientFunds if short."""
        step = validated_step(transfer_id, account_id, amount, currency)
        digest = fingerprint_of(EntryKind.WITHDRAWAL, account_id, amount, currency)
        return _one(
            await self._run(step, lambda ctx: plan_debit(ctx, step, EntryKind.WITHDRAWAL), digest)
        )

    # saga steps: `fingerprint` is the digest of the step's request (see StepContext) ---------

    async def claim(self, transfer_id: str, fingerprint: str) -> None:
        """Make the request with `fingerprint` the owner of `transfer_id` (on the id's own
        shard), or refuse it with IdempotencyConflict: a saga's first step."""
        check_transfer_id(transfer_id)
        await claim(self.router.shard_for(transfer_id), transfer_id, fingerprint)

    async def debit(
        self,
        transfer_id: str,
        account_id: str,
        amount: int,
        currency: str | None = None,
        fingerprint: str | None = None,
    ) -> StepResult:
        """A saga's first money step: take `amount` from the source, once per transfer id."""
        step = validated_step(transfer_id, account_id, amount, currency)
        return _one(
            await self._run(step, lambda ctx: plan_debit(ctx, step, EntryKind.DEBIT), fingerprint)
        )

    async def credit(
        self,
        transfer_id: str,
        account_id: str,
        amount: int,
        currency: str | None = None,
        fingerprint: str | None = None,
    ) -> StepResult:
        """Give `amount` to the target; AlreadyCompensated once `fence_credit` refused it."""
        step = validated_step(transfer_id, account_id, amount, currency)
        return _one(
            await self._run(step, lambda ctx: plan_credit(ctx, step, EntryKind.CREDIT), fingerprint)
        )

    async def refund(
        self,
        transfer_id: str,
        account_id: str,
        amount: int,
        currency: str | None = None,
        fingerprint: str | None = None,
    ) -> StepResult:
        """Pay the debit back to the source, even frozen or closed; with no debit recorded, a marker
        that refuses the debit from then on."""
        step = validated_step(transfer_id, account_id, amount, currency)
        return _one(await self._run(step, lambda ctx: plan_refund(ctx, step), fingerprint))

    async def settled_by_hand(
        self,
        transfer_id: str,
        account_id: str,
        amount: int,
        currency: str | None = None,
        fingerprint: str | None = None,
    ) -> StepResult:
        """Record that an operator refunded by hand: a refund marker (`marker=True`), or the
        refund already there (`marker=False`: the ledger refunded first, nothing to settle)."""
        step = validated_step(transfer_id, account_id, amount, currency)
        return _one(await self._run(step, lambda ctx: plan_settled_by_hand(ctx, step), fingerprint))

    async def fence_credit(
        self,
        transfer_id: str,
        account_id: str,
        amount: int,
        currency: str | None = None,
        fingerprint: str | None = None,
    ) -> StepResult:
        """The credit if it landed; else a marker (`marker=True`) that refuses it from now on."""
        step = validated_step(transfer_id, account_id, amount, currency)
        return _one(await self._run(step, lambda ctx: plan_fence_credit(ctx, step), fingerprint))

    async def transfer_within_shard(
        self,
        transfer_id: str,
        source_account_id: str,
        target_account_id: str,
        amount: int,
        currency: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[StepResult, StepResult]:
        """Debit and credit two accounts of one shard atomically, rows locked in id order."""
        source = validated_step(transfer_id, source_account_id, amount, currency)
        check_account_id(target_account_id)
        if source_account_id == target_account_id:
            # Both writes would start from the same row: the second would overwrite the first.
            raise SameAccount(
                f"transfer {transfer_id} moves money from {source_account_id} to itself"
            )
        if not self.router.same_shard(source_account_id, target_account_id):
            # the route recorded by the workflow predates a change of SHARD_DSNS
            raise RouteChanged(
                f"{source_account_id} and {target_account_id} no longer share a shard"
            )
        applied = await self.runner.run(
            transfer_id,
            [source_account_id, target_account_id],
            lambda ctx: plan_transfer_within_shard(ctx, source, target_account_id),
            fingerprint=fingerprint,
        )
        debit, credit = sorted(applied.results, key=lambda result: result.kind != EntryKind.DEBIT)
        return debit, credit

    # saga steps in batches: one outcome per step, in input order (see shards.engine.batches) --

    async def claim_batch(self, claims: Sequence[tuple[str, str]]) -> list[BusinessError | None]:
        """`claim` for many (transfer_id, fingerprint): None where the request owns the id, else
        the error a single claim would raise (IdempotencyConflict, or the invalid id's)."""
        outcomes: list[BusinessError | None] = [None] * len(claims)
        by_shard: dict[int, list[tuple[int, tuple[str, str]]]] = defaultdict(list)
        for index, (transfer_id, fingerprint) in enumerate(claims):
            try:
                shard = self.router.index_for(check_transfer_id(transfer_id))
            except BusinessError as error:
                outcomes[index] = error
                continue
            by_shard[shard].append((index, (transfer_id, fingerprint)))
        groups = list(by_shard.items())
        refusals = await asyncio.gather(
            *(
                claim_many(self.router.shards[shard], [pair for _, pair in group])
                for shard, group in groups
            )
        )
        for (_, group), refused in zip(groups, refusals, strict=True):
            for (index, _), refusal in zip(group, refused, strict=True):
                outcomes[index] = refusal
        return outcomes

    async def debit_batch(self, steps: Sequence[BatchStep]) -> list[StepResult | BusinessError]:
        """`debit` for many transfers: per step its result, or the error `debit` would raise."""
        return await self.batches.run(
            steps, lambda ctx, step: plan_debit(ctx, step, EntryKind.DEBIT)
        )

    async def credit_batch(self, steps: Sequence[BatchStep]) -> list[StepResult | BusinessError]:
        """`credit` for many transfers: per step its result, or the error `credit` would raise."""
        return await self.batches.run(
            steps, lambda ctx, step: plan_credit(ctx, step, EntryKind.CREDIT)
        )

    async def fence_credit_batch(
        self, steps: Sequence[BatchStep]
    ) -> list[StepResult | BusinessError]:
        """`fence_credit` for many transfers: the credit that landed, or a marker refusing it."""
        return await self.batches.run(steps, plan_fence_credit)

    async def refund_batch(self, steps: Sequence[BatchStep]) -> list[StepResult | BusinessError]:
        """`refund` for many transfers: the refund, or a marker where nothing was debited."""
        return await self.batches.run(steps, plan_refund)

    async def end_claims(self, endings: Sequence[Ending]) -> list[bool]:
        """Record on its claim the ending of each transfer whose source shows no compensation
        on an account that exists (no refund or release entry, real or marker, or only a marker
        written while the account did not exist, which keeps no error): True for those, whose
        claim now hands the ending to a later run of the same request (see shards.claims.claim);
        False where the source's entries record it already.

        The saga then settles once more (fence, refund): a debit that a concurrent run of the
        request slipped in meanwhile is refunded, a credit found completes it.
        """
        for ending in endings:
            check_transfer_id(ending.transfer_id)
            check_account_id(ending.source_account_id)
        by_source = _by_shard(self.router, [e.source_account_id for e in endings], endings)
        found = await asyncio.gather(
            *(
                compensated(self.router.shards[shard], [e.transfer_id for e in group])
                for shard, group in by_source.items()
            )
        )
        settled = set().union(*found)
        unrecorded = [e for e in endings if e.transfer_id not in settled]
        by_claim = _by_shard(self.router, [e.transfer_id for e in unrecorded], unrecorded)
        await asyncio.gather(
            *(end_claims(self.router.shards[shard], group) for shard, group in by_claim.items())
        )
        return [ending.transfer_id not in settled for ending in endings]

    # holds --------------------------------------------------------------------------------

    async def hold(
        self,
        transfer_id: str,
        account_id: str,
        amount: int,
        ttl_s: float,
        currency: str | None = None,
        fingerprint: str | None = None,
    ) -> HoldView:
        """Hold `amount` of the account's available funds until the shard's clock passes
        now() + ttl_s (a pending transfer's first money step)."""
        if not 0 < ttl_s <= MAX_HOLD_TTL_S:
            raise InvalidTtl(
                f"hold time-to-live {ttl_s}s must be above 0 and at most {MAX_HOLD_TTL_S}s"
            )
        step = validated_step(transfer_id, account_id, amount, currency)
        applied = await self._run(
            step, lambda ctx: plan_hold(ctx, step, ttl_s), fingerprint, with_hold=True
        )
        return _hold_view(applied, replayed=applied.results[0].replayed)

    async def post(
        self,
        transfer_id: str,
        account_id: str,
        amount: int | None = None,
        fingerprint: str | None = None,
    ) -> StepResult:
        """Post the hold: take `amount` (default: all) of it as the debit (an entry of kind
        `capture`) and give the rest back (kind `release`).

        A post made before is handed back as it was, whatever `amount` says now."""
        check_transfer_id(transfer_id)
        check_account_id(account_id)
        if amount is not None:
            check_amount(amount)
        applied = await self.runner.run(
            transfer_id,
            [account_id],
            lambda ctx: plan_post(ctx, account_id, amount),
            with_hold=True,
            fingerprint=fingerprint,
        )
        return _one(applied)

    async def void(
        self, transfer_id: str, account_id: str, amount: int, fingerprint: str | None = None
    ) -> StepResult:
        """Void the hold (an entry of kind `release`); idempotent, and a marker when the hold was
        never placed. A hold that was posted is not voided: its capture entry comes back."""
        step = validated_step(transfer_id, account_id, amount, None)
        return _one(
            await self._run(step, lambda ctx: plan_void(ctx, step), fingerprint, with_hold=True)
        )

    async def get_hold(self, transfer_id: str, account_id: str) -> HoldView | None:
        """The transfer's hold on `account_id` as it stands, or None if none was placed."""
        check_transfer_id(transfer_id)
        shard = self.router.shard_for(account_id)
        query = select(*HOLD_COLUMNS).where(holds.c.transfer_id == transfer_id)
        async with shard.begin() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else HoldView(*row)

    async def _run(
        self, step: Step, plan: Plan, fingerprint: str | None, *, with_hold: bool = False
    ) -> Applied:
        return await self.runner.run(
            step.transfer_id,
            [step.account_id],
            plan,
            with_hold=with_hold,
            fingerprint=fingerprint,
        )


def _hold_view(applied: Applied, *, replayed: bool) -> HoldView:
    if applied.hold is None:  # a hold step always reads or writes the hold row
        raise RuntimeError("hold finished without a hold row")
    return dataclasses.replace(applied.hold, replayed=replayed)
