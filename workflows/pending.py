"""PendingTransferWorkflow: hold an amount on the source, then post it to the target or void it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.models import HoldApplied, HoldRequest, PostRequest
    from shards.enums import EntryKind
    from shards.errors import HoldExpired, HoldNotActive, IdempotencyConflict, InvalidAmount
    from workflows import policies
    from workflows.models import (
        AppliedEntry,
        PendingTransferRequest,
        TransferError,
        TransferOutcome,
        TransferStatus,
        TransferStep,
    )
    from workflows.readable import Readable
    from workflows.saga import LedgerSaga
    from workflows.saga_steps import Refused, cancelled, record_once, shielded

POSTED = "posted"  # a decision, not a step: the post goes on as capturing, then crediting


@dataclass(frozen=True)
class _Decision:
    """How the hold resolves (`how`: posted, voided, expired or cancelled), decided once."""

    how: str
    amount: int | None = None  # posted: the part of the hold to capture, None for all of it


# A request that fails validation at decode fails the workflow at once (see TransferWorkflow).
@workflow.defn(name="PendingTransferWorkflow", failure_exception_types=[ValidationError])
class PendingTransferWorkflow(LedgerSaga):
    """Hold the amount on the source until a post, a void or the hold's timeout decides.

    The shard's clock judges the hold: a capture after `expires_at` is refused there whatever this
    workflow's timer says, and a lapsed hold stops reducing available funds with no worker at all.
    The timer only cleans up (releases the hold and records EXPIRED). Source and target on one
    shard take the same path: capture, then credit, two transactions on that shard.
    """

    @workflow.init  # the request is known before run: the Update validators read it
    def __init__(self, request: PendingTransferRequest) -> None:
        super().__init__(request)
        self._timeout = timedelta(seconds=request.timeout_s)
        self._decision: _Decision | None = None
        self._post_refusal: TransferError | None = None  # the post Update's answer, if refused

    @workflow.run
    async def run(self, request: PendingTransferRequest) -> TransferOutcome:
        """Place the hold, wait for a post, a void, a cancellation or the timeout, and end."""
        self._start(TransferStep.HOLDING)
        if not self._legacy:
            try:
                await self._claim()
            except Refused as refusal:
                return await self._claim_refused(refusal.error)
            except asyncio.CancelledError:
                refused = await self._claimed_after_cancel()
                if refused:
                    return await self._claim_refused(refused)
                reason = cancelled("before the hold was placed")
                return await self._void_and_finish(
                    TransferStatus.FAILED, TransferStep.CANCELLED, reason
                )
        try:
            hold = await self._hold()
        except Refused as refusal:
            return await self._void_and_finish(
                TransferStatus.FAILED, TransferStep.HOLD_REFUSED, refusal.error
            )
        except asyncio.CancelledError:
            reason = cancelled("before the hold was placed")
            return await self._void_and_finish(
                TransferStatus.FAILED, TransferStep.CANCELLED, reason
            )
        self._expires_at = hold.expires_at
        self._advance(TransferStatus.HELD, TransferStep.HELD)

        decision = await self._wait_for_decision()
        # Once decided, the decision runs to its end: a post or void Update is waiting for it.
        outcome = await shielded(self._carry_out(decision))
        await shielded(workflow.wait_condition(workflow.all_handlers_finished))
        return outcome

    @workflow.update
    async def post(self, amount: int | None = None) -> TransferOutcome:
        """Capture the hold (or `amount` of it, releasing the rest) and credit the target.

        Answers with the outcome (COMPLETED, or COMPENSATED when the credit was refused), or fails
        with the reason the capture was refused (HoldExpired: the shard's clock said too late).
        """
        self._decide(_Decision(POSTED, amount))
        await workflow.wait_condition(lambda: self._status.final)
        if self._post_refusal is not None:
            refusal = self._post_refusal
            raise ApplicationError(refusal.message, type=refusal.type, non_retryable=True)
        return self.status()

    @post.validator
    def _validate_post(self, amount: int | None = None) -> None:
        self._require_undecided()
        held = self._request.amount
        if amount is not None and not 0 < amount <= held:
            raise _rejection(
                InvalidAmount,
                f"cannot post {self._money(amount)}: the amount must be above 0 and at most "
                f"the hold's {self._money(held)}",
            )

    @workflow.update
    async def void(self) -> TransferOutcome:
        """Release the hold; answers with the outcome (VOIDED)."""
        self._decide(_Decision(TransferStep.VOIDED))
        await workflow.wait_condition(lambda: self._status.final)
        return self.status()

    @void.validator
    def _validate_void(self) -> None:
        self._require_undecided()

    # the decision -------------------------------------------------------------------------

    async def _wait_for_decision(self) -> _Decision:
        """A post or a void, else the timer (expired), else a cancellation (voided)."""
        undecided = _Decision(TransferStep.EXPIRED)
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None,
                timeout=self._timeout,
                timeout_summary=Readable("hold expiry"),
            )
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            undecided = _Decision(TransferStep.CANCELLED)
        # An Update accepted in the same workflow task as the timer or the cancellation wins.
        self._decision = self._decision or undecided
        return self._decision

    def _decide(self, decision: _Decision) -> None:
        # Two Updates can both pass validation before either handler runs: check again.
        self._require_undecided()
        self._decision = decision
        # What it asks for runs as regular activities: the first is scheduled with the Update's
        # acceptance, so no shard changes for an Update that the history may yet lose.
        self._durable = not self._legacy

    def _require_undecided(self) -> None:
        """A hold resolves once: post and void need a HELD transfer that nothing decided yet."""
        transfer_id = self._request.transfer_id
        if self._decision is not None:
            error = HoldExpired if self._decision.how == TransferStep.EXPIRED else HoldNotActive
            raise _rejection(error, f"the hold of transfer {transfer_id} is {self._decision.how}")
        if self._status != TransferStatus.HELD:
            raise _rejection(
                HoldNotActive,
                f"transfer {transfer_id} is {self._status} ({self._step}), not HELD",
            )

    async def _carry_out(self, decision: _Decision) -> TransferOutcome:
        if decision.how == POSTED:
            return await self._post(decision.amount)
        if decision.how == TransferStep.EXPIRED:
            return await self._void_and_finish(TransferStatus.EXPIRED, TransferStep.EXPIRED)
        reason = cancelled("while held") if decision.how == TransferStep.CANCELLED else None
        return await self._void_and_finish(
            TransferStatus.VOIDED, TransferStep(decision.how), reason
        )

    # the outcomes -------------------------------------------------------------------------

    async def _post(self, amount: int | None) -> TransferOutcome:
        self._advance(TransferStatus.RUNNING, TransferStep.CAPTURING)
        try:
            capture = await self._post_hold(amount)
        except Refused as refusal:
            return await self._refuse_post(refusal.error)
        wanted = self._request.amount if amount is None else amount
        if capture.amount != wanted and not self._legacy:
            # a capture found on the shard (its task was lost): the first post decided
            self._post_refusal = TransferError(
                type=IdempotencyConflict.__name__,
                message=f"the hold was posted already for {self._money(capture.amount)}; "
                f"a post of {self._money(wanted)} is refused",
            )
        return await self._deliver(capture)

    async def _deliver(self, capture: AppliedEntry) -> TransferOutcome:
        """Credit what was captured; a refused credit is settled (fenced, then refunded)."""
        self._record(capture)
        self._amount = capture.amount
        self._advance(TransferStatus.DEBITED, TransferStep.CREDITING)
        try:
            self._record(await self._credit())
        except Refused as refusal:
            return await self._settle(refusal.error)
        return self._finish(TransferStatus.COMPLETED, TransferStep.COMPLETED)

    async def _refuse_post(self, refusal: TransferError) -> TransferOutcome:
        """Nothing was posted: void the hold, and the post's Update fails with the reason."""
        self._post_refusal = refusal
        if refusal.type == HoldExpired.__name__:  # the shard's clock said so before the timer
            return await self._void_and_finish(
                TransferStatus.EXPIRED, TransferStep.EXPIRED, refusal
            )
        return await self._void_and_finish(
            TransferStatus.FAILED, TransferStep.CAPTURE_REFUSED, refusal
        )

    async def _void_and_finish(
        self, status: TransferStatus, step: TransferStep, reason: TransferError | None = None
    ) -> TransferOutcome:
        """Void the hold, or fence it out with a marker when it never landed, then finish.

        The marker also keeps a refused transfer refused: a resubmission of this id after
        Temporal's retention has forgotten the workflow cannot hold funds again. A hold found
        posted (a post whose task was lost, or a transfer that ended before) is not voided: the
        void hands back its capture entry, which is credited, or the refund that settled it.
        """
        self._advance(self._status, TransferStep.RELEASING)
        try:
            release = await shielded(self._void_hold())
        except Refused as refusal:  # before ENTRIES_DECIDE: a captured hold was refused here
            workflow.logger.warning("transfer %s: %s", self._request.transfer_id, refusal)
            return self._finish(status, step, reason)
        if release.kind == EntryKind.CAPTURE:
            return await shielded(self._deliver(release))
        record_once(self._entries, release)  # voided again: see _ending_recorded
        if release.kind == EntryKind.REFUND:
            return self._finish(TransferStatus.COMPENSATED, TransferStep.REFUNDED, reason)
        if (
            release.marker
            and status == TransferStatus.FAILED
            and reason is not None
            and await self._ending_recorded(reason)
        ):  # no account held the marker: the claim records the end; a hold slipped in is voided
            return await self._void_and_finish(status, step, reason)
        return self._finish(status, step, reason)

    async def _claim_refused(self, refusal: TransferError) -> TransferOutcome:
        """Another request owns the id: FAILED, nothing of this one is written. Or this request
        ended before with nothing moved, as its claim recorded: it ends so again, by its entries
        (a void: a release marker once the source exists), FAILED with the first run's error."""
        if self._ended_before(refusal):
            return await self._void_and_finish(TransferStatus.FAILED, TransferStep.REFUSED, refusal)
        return self._finish(TransferStatus.FAILED, TransferStep.REFUSED, refusal)

    # the steps ----------------------------------------------------------------------------

    async def _hold(self) -> HoldApplied:
        request, ttl_s = self._request, self._timeout.total_seconds()
        return await self._execute(
            LedgerActivities.hold,
            HoldRequest(
                transfer_id=request.transfer_id,
                account_id=request.source_account_id,
                amount=request.amount,
                currency=request.currency,
                ttl_s=ttl_s,
                fingerprint=self._fingerprint(),
            ),
            # the release that follows a cancellation refuses a hold arriving late
            policies.ABANDON_ON_CANCEL,
            f"hold {self._money()} on {request.source_account_id} for {ttl_s:g}s",
        )

    async def _post_hold(self, amount: int | None) -> AppliedEntry:
        request = self._request
        part = "all" if amount is None else self._money(amount)
        return await self._execute(
            LedgerActivities.post,
            PostRequest(
                transfer_id=request.transfer_id,
                account_id=request.source_account_id,
                amount=amount,
                fingerprint=self._fingerprint(),
            ),
            policies.WAIT_ON_CANCEL,  # runs shielded: never cancelled
            f"capture {part} of the hold of {self._money()} on {request.source_account_id}",
        )

    async def _void_hold(self) -> AppliedEntry:
        # Voided only when nothing was posted, so the amount is still the whole hold.
        request = self._request
        return await self._run_step(
            LedgerActivities.void,
            request.source_account_id,
            policies.WAIT_ON_CANCEL,  # runs shielded: never cancelled
            f"release the hold of {self._money()} on {request.source_account_id}",
        )


def _rejection(error: type[Exception], message: str) -> ApplicationError:
    """An Update's refusal, typed like the shard's error of the same meaning."""
    return ApplicationError(message, type=error.__name__, non_retryable=True)
