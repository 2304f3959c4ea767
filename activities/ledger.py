"""The ledger activities of the transfer workflows: each is one local transaction on one shard.

Business refusals become non-retryable `ApplicationError`s whose `type` is the error's `code`;
infrastructure errors become retryable ones of the same shape, and anything unexpected is raised
as it is (retryable too).
Every step is idempotent by (transfer_id, kind) in the shard, so a retry replays, never repeats.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.models import (
    AppliedEntry,
    ClaimEnding,
    ClaimRequest,
    HoldApplied,
    HoldRequest,
    PostRequest,
    Route,
    StepRequest,
    TransferError,
    TransferRequest,
    WithinShardRequest,
)
from shards.enums import HoldStatus
from shards.errors import BusinessError, HoldNotActive, InfrastructureError
from shards.records import Ending, StepResult

if TYPE_CHECKING:  # the worker imports the Ledger; the client imports this module without it
    from shards.ledger import Ledger

# transfer_id, account_id, amount, currency, fingerprint
LedgerStep = Callable[[str, str, int, str | None, str | None], Awaitable[StepResult]]

# Test-only: the name of a step (claim, debit, credit, fence_credit, refund,
# transfer_within_shard, hold, capture, release). The worker process exits at once right after
# that step's first shard transaction commits, before its workflow task can complete: the crash
# that a local activity's commit must survive (tests/workflows/test_crash_after_commit.py, chaos).
CRASH_AFTER_COMMIT = "TRANSFERS_CRASH_AFTER_COMMIT"
CRASH_EXIT_CODE = 70


class LedgerActivities:
    """Activities over one `Ledger`, built once by the worker and shared by all its tasks."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.crash_after_commit = os.environ.get(CRASH_AFTER_COMMIT) or None

    def _committed(self, step: str) -> None:
        if step == self.crash_after_commit:
            print(f"{CRASH_AFTER_COMMIT}={step}: exiting after the commit", file=sys.stderr)
            os._exit(CRASH_EXIT_CODE)

    @activity.defn
    async def claim(self, request: ClaimRequest) -> Route:
        """A saga's first step: make this request the owner of its transfer id (refused with
        IdempotencyConflict if another request has it), and route both sides."""
        with refusals_are_final(request.transfer_id, "claim"):
            await self.ledger.claim(request.transfer_id, request.fingerprint)
            router = self.ledger.router
            route = Route(
                source_shard=router.index_for(request.source_account_id),
                target_shard=router.index_for(request.target_account_id),
            )
        self._committed("claim")
        return route

    @activity.defn
    async def end_claim(self, ending: ClaimEnding) -> bool:
        """A transfer ends FAILED with nothing moved: where its source's entries do not record it
        (no account to write the refund marker on), its claim records the ending (True), and
        a later run of the request is refused with the same error."""
        with refusals_are_final(ending.transfer_id, "end_claim"):
            recorded = await self.ledger.end_claims([ending_of(ending)])
        self._committed("end_claim")
        return recorded[0]

    @activity.defn
    async def route(self, request: TransferRequest) -> Route:
        """The shard of each account, for runs recorded before `claim` (which routes too). Run as
        a local activity so that the answer is recorded in history: a replay never re-computes
        it, even if SHARD_DSNS changed since."""
        with refusals_are_final(request.transfer_id, "route"):
            router = self.ledger.router
            return Route(
                source_shard=router.index_for(request.source_account_id),
                target_shard=router.index_for(request.target_account_id),
            )

    @activity.defn
    async def debit(self, request: StepRequest) -> AppliedEntry:
        """Take the amount from the source account."""
        return await self._apply("debit", request, self.ledger.debit)

    @activity.defn
    async def credit(self, request: StepRequest) -> AppliedEntry:
        """Give the amount to the target account."""
        return await self._apply("credit", request, self.ledger.credit)

    @activity.defn
    async def fence_credit(self, request: StepRequest) -> AppliedEntry:
        """The credit if it landed; else a marker that refuses it from now on."""
        return await self._apply("fence_credit", request, self.ledger.fence_credit)

    @activity.defn
    async def refund(self, request: StepRequest) -> AppliedEntry:
        """Give the debited amount back to the source; a marker if the debit never applied."""
        return await self._apply("refund", request, self.ledger.refund)

    @activity.defn
    async def settled_by_hand(self, request: StepRequest) -> AppliedEntry:
        """An operator's resolve_compensation: a refund marker keeps the refund from landing
        later; a refund found instead is handed back."""
        return await self._apply("settled_by_hand", request, self.ledger.settled_by_hand)

    @activity.defn
    async def transfer_within_shard(
        self, request: WithinShardRequest
    ) -> tuple[AppliedEntry, AppliedEntry]:
        """Debit and credit two accounts of one shard in one transaction."""
        with refusals_are_final(request.transfer_id, "transfer within shard"):
            debit, credit = await self.ledger.transfer_within_shard(
                request.transfer_id,
                request.source_account_id,
                request.target_account_id,
                request.amount,
                request.currency,
                request.fingerprint,
            )
        self._committed("transfer_within_shard")
        log_applied(debit)
        log_applied(credit)
        return applied_entry(debit), applied_entry(credit)

    @activity.defn
    async def hold(self, request: HoldRequest) -> HoldApplied:
        """Hold the amount on the source until its shard's clock passes now + ttl_s."""
        with refusals_are_final(request.transfer_id, "hold"):
            hold = await self.ledger.hold(
                request.transfer_id,
                request.account_id,
                request.amount,
                request.ttl_s,
                request.currency,
                request.fingerprint,
            )
            self._committed("hold")
            if hold.status != HoldStatus.ACTIVE:  # found again, but resolved long ago
                raise HoldNotActive(f"the hold of transfer {request.transfer_id} is {hold.status}")
        activity.logger.info(
            "transfer %s: hold of %d on %s %s, expires at %s",
            request.transfer_id,
            hold.amount,
            hold.account_id,
            "replayed" if hold.replayed else "placed",
            hold.expires_at.isoformat(),
        )
        return HoldApplied(
            account_id=hold.account_id,
            amount=hold.amount,
            expires_at=hold.expires_at,
            replayed=hold.replayed,
        )

    @activity.defn(name="capture")  # the activity type's name in recorded histories
    async def post(self, request: PostRequest) -> AppliedEntry:
        """Post the hold: take it (or `amount` of it, giving the rest back) as the source's
        debit, an entry of kind `capture`."""
        with refusals_are_final(request.transfer_id, "capture"):
            result = await self.ledger.post(
                request.transfer_id, request.account_id, request.amount, request.fingerprint
            )
        self._committed("capture")
        log_applied(result)
        return applied_entry(result)

    @activity.defn(name="release")  # the activity type's name in recorded histories
    async def void(self, request: StepRequest) -> AppliedEntry:
        """Void the hold (an entry of kind `release`); a marker that refuses a late hold if it was
        never placed. A hold found posted comes back as its capture entry (kind `capture`): the
        caller owes it a credit."""
        return await self._apply(
            "release",
            request,
            # a void needs no currency: it gives back exactly what its hold held
            lambda transfer_id, account_id, amount, _, fingerprint: self.ledger.void(
                transfer_id, account_id, amount, fingerprint
            ),
        )

    async def _apply(self, kind: str, request: StepRequest, step: LedgerStep) -> AppliedEntry:
        with refusals_are_final(request.transfer_id, kind):
            result = await step(
                request.transfer_id,
                request.account_id,
                request.amount,
                request.currency,
                request.fingerprint,
            )
        self._committed(kind)
        log_applied(result)
        return applied_entry(result)


@contextmanager
def refusals_are_final(transfer_id: str, step: str) -> Iterator[None]:
    """A business refusal stops the retries; infrastructure errors and the unexpected do not."""
    try:
        yield
    except InfrastructureError as error:
        # Without the driver error it was raised from: that chain (SQL text, two stack traces)
        # exceeds the server's failure size limit, and the Web UI would show no reason at all.
        raise ApplicationError(str(error), type=error.code) from None
    except BusinessError as error:
        _log_refusal(transfer_id, step, error)
        raise ApplicationError(
            str(error),
            type=error.code,
            non_retryable=True,
            # an expected outcome, logged above: no stack trace in the worker's log
            category=ApplicationErrorCategory.BENIGN,
        ) from error


def refusal_of(transfer_id: str, step: str, error: BusinessError) -> TransferError:
    """A refusal returned, not raised (one transfer of a batched step): the type and message
    the workflow reads off the ApplicationError that `refusals_are_final` raises for one step."""
    _log_refusal(transfer_id, step, error)
    return TransferError(type=error.code, message=str(error))


def _log_refusal(transfer_id: str, step: str, error: BusinessError) -> None:
    activity.logger.info("transfer %s: %s refused: %s: %s", transfer_id, step, error.code, error)


def ending_of(ending: ClaimEnding) -> Ending:
    """The shard layer's record of an ending."""
    return Ending(
        transfer_id=ending.transfer_id,
        fingerprint=ending.fingerprint,
        source_account_id=ending.source_account_id,
        code=ending.error.type,
        message=ending.error.message,
    )


def applied_entry(result: StepResult) -> AppliedEntry:
    """The entry a step applied, as the history records it (no balance)."""
    return AppliedEntry(
        kind=result.kind,
        account_id=result.account_id,
        amount=result.amount,
        replayed=result.replayed,
        marker=result.marker,
    )


def log_applied(result: StepResult, level: int = logging.INFO) -> None:
    """One line a step; without the balance, which only the account's owner may see."""
    activity.logger.log(
        level,
        "transfer %s: %s of %d on %s %s",
        result.transfer_id,
        result.kind,
        result.amount,
        result.account_id,
        how_applied(result),
    )


def how_applied(result: StepResult) -> str:
    """What a step did: applied, replayed, or wrote a marker."""
    return "marker written" if result.marker else "replayed" if result.replayed else "applied"
