"""LedgerSaga: what the transfer workflows share, beyond their stories.

Their progress as Temporal shows it (the `status` query, the `TransferStatus` search attribute,
the Web UI's current details), the credit of the target, and the refund that compensates a
refused credit, with an operator's way out when the refund itself is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.models import ClaimEnding, ClaimRequest, Route, StepRequest
    from shards.money import format_amount
    from workflows import policies
    from workflows.models import (
        AppliedEntry,
        TransferError,
        TransferOutcome,
        TransferRequest,
        TransferStatus,
        TransferStep,
    )
    from workflows.operator import OperatorDecision, resolved_by_operator
    from workflows.saga_steps import (
        SETTLE_BY_ENTRIES,
        Refused,
        ended_before,
        entries_decide,
        lean_history,
        record_once,
        records_ending,
        refund_stuck_visible,
        run_step,
        shielded,
    )
    from workflows.search_attributes import (
        AMOUNT,
        CURRENCY,
        REFUND_IS_STUCK,
        SOURCE_ACCOUNT_ID,
        TARGET_ACCOUNT_ID,
        TRANSFER_STATUS,
    )

A = TypeVar("A")
R = TypeVar("R")


class LedgerSaga:
    """State, queries and Updates shared by the transfer workflows; each defines its own run."""

    def __init__(self, request: TransferRequest) -> None:
        self._request = request
        # What the credit (and its refund) moves: the request's amount, or what a post captured.
        self._amount = request.amount
        self._status = TransferStatus.RUNNING
        self._step = TransferStep.STARTED
        self._entries: list[AppliedEntry] = []
        self._error: TransferError | None = None
        self._expires_at: datetime | None = None  # set once a pending transfer's hold is placed
        self._decisions: list[OperatorDecision] = []  # at most one, see _require_stuck_refund
        # Set by _start: the run decides as histories recorded before ENTRIES_DECIDE did.
        self._legacy = False
        # Once an Update has decided, steps run as regular activities (see run_step's `durable`).
        self._durable = False
        # The claim records how this request ended (found there, or recorded by _ending_recorded).
        self._claim_ended = False

    @workflow.query
    def status(self) -> TransferOutcome:
        """Where the transfer is: status, step, entries applied so far, error."""
        return TransferOutcome(
            transfer_id=self._request.transfer_id,
            status=self._status,
            step=self._step,
            entries=tuple(self._entries),
            error=self._error,
            expires_at=self._expires_at,
        )

    @workflow.update
    def retry_compensation(self) -> None:
        """Operator: try the stuck refund again, once its cause is fixed."""
        self._decisions.append(OperatorDecision(resolved=False))

    @retry_compensation.validator
    def _validate_retry(self) -> None:
        self._require_stuck_refund()

    @workflow.update
    def resolve_compensation(self, note: str) -> None:
        """Operator: the refund was settled outside this workflow; `note` says how."""
        self._decisions.append(OperatorDecision(resolved=True, note=note))

    @resolve_compensation.validator
    def _validate_resolve(self, note: str) -> None:
        self._require_stuck_refund()
        if not note.strip():
            raise ValueError("say how the refund was settled")

    # steps on one account -----------------------------------------------------------------

    async def _credit(self) -> AppliedEntry:
        request = self._request
        return await self._run_step(
            LedgerActivities.credit,
            request.target_account_id,
            policies.WAIT_ON_CANCEL,
            f"credit {self._money()} to {request.target_account_id}",
        )

    async def _refund(self) -> AppliedEntry:
        request = self._request
        return await self._run_step(
            LedgerActivities.refund,
            request.source_account_id,
            # never cancelled: it runs shielded from the workflow's cancellation
            policies.WAIT_ON_CANCEL,
            f"refund {self._money()} to {request.source_account_id}",
        )

    async def _record_settled_by_hand(self) -> AppliedEntry | None:
        """A refund marker on the source, so that no refund lands after the operator's (a
        re-run, a resubmission): None; or the real refund found there first."""
        request = self._request
        try:
            found = await self._run_step(
                LedgerActivities.settled_by_hand,
                request.source_account_id,
                policies.WAIT_ON_CANCEL,
                f"record the refund of {self._money()} to {request.source_account_id} as "
                "settled by hand",
            )
        except Refused as refusal:  # another request's entries: no refund of ours lands there
            workflow.logger.error("transfer %s: %s", request.transfer_id, refusal)
            return None
        if not found.marker:
            return found
        self._record(found)
        return None

    async def _fence_credit(self) -> AppliedEntry:
        request = self._request
        return await self._run_step(
            LedgerActivities.fence_credit,
            request.target_account_id,
            policies.WAIT_ON_CANCEL,
            f"settle the credit of {self._money()} to {request.target_account_id}",
        )

    async def _run_step(
        self,
        step: Callable[[LedgerActivities, StepRequest], Awaitable[AppliedEntry]],
        account_id: str,
        cancellation: workflow.ActivityCancellationType,
        summary: str,
    ) -> AppliedEntry:
        """`step` of what the saga moves, on one account of the transfer."""
        request = self._request
        step_request = StepRequest(
            transfer_id=request.transfer_id,
            account_id=account_id,
            amount=self._amount,
            currency=request.currency,
            fingerprint=self._fingerprint(),
        )
        return await self._execute(step, step_request, cancellation, summary)

    def _fingerprint(self) -> str:
        """The request's digest on every step (a run started before ENTRIES_DECIDE made no claim,
        but its later steps carry it all the same: the shards compare what they can)."""
        return self._request.fingerprint()

    async def _claim(self) -> Route:
        """Own the transfer id (refused with IdempotencyConflict if another request has it) and
        route both sides: a saga's first step, before any money moves."""
        request = self._request
        return await self._execute(
            LedgerActivities.claim,
            ClaimRequest(
                transfer_id=request.transfer_id,
                source_account_id=request.source_account_id,
                target_account_id=request.target_account_id,
                fingerprint=request.fingerprint(),
            ),
            policies.ABANDON_ON_CANCEL,
            f"claim {request.transfer_id}: {self._accounts()}",
        )

    def _ended_before(self, refusal: TransferError) -> bool:
        """Whether the claim refused this request with its own earlier end (see ended_before):
        then it ends so again, by its entries, and records nothing more on its claim."""
        if self._legacy or not ended_before(refusal):
            return False
        self._claim_ended = True
        return True

    async def _claimed_after_cancel(self) -> TransferError | None:
        """After a cancellation stopped the claim: claim again, to the end (its commit may have
        been lost with its workflow task). The refusal when another request owns the id: then
        nothing of this transfer may be written."""
        try:
            await shielded(self._claim())
        except Refused as refusal:
            return refusal.error
        return None

    async def _execute(
        self,
        step: Callable[[LedgerActivities, A], Awaitable[R]],
        argument: A,
        cancellation: workflow.ActivityCancellationType,
        summary: str,
    ) -> R:
        """Any ledger step: one shard transaction, retried until done or refused (`Refused`)."""
        return await run_step(
            step, argument, summary=summary, cancellation=cancellation, durable=self._durable
        )

    # compensation -------------------------------------------------------------------------

    async def _credit_landed(self) -> bool:
        """Did the credit commit? If not, it is fenced out for good (ask before any refund).

        An attempt can end without its outcome being known (cancelled, timed out, lost with its
        workflow task); refunding then could pay twice. The fence answers on the target's shard.
        """
        self._advance(self._status, TransferStep.SETTLING_CREDIT)
        try:
            fence = await shielded(self._fence_credit())
        except Refused as refusal:  # runs before ENTRIES_DECIDE only: a fence now never refuses
            workflow.logger.error("transfer %s: %s", self._request.transfer_id, refusal)
            return False
        if fence.marker:
            return False
        self._record(fence)
        return True

    async def _settle(
        self,
        reason: TransferError,
        failed_step: TransferStep = TransferStep.CANCELLED,
        *,
        credit_unknown: bool = False,
    ) -> TransferOutcome:
        """End a transfer that did not complete as its entries on the shards say, whatever
        stopped it (a refusal, a cancellation, a re-run finding a compensation): first the
        credit, fenced on the target's shard (found there, it completes the transfer), then the
        refund of the source (a marker where nothing was taken: FAILED as `failed_step`).

        Runs recorded before SETTLE_BY_ENTRIES fenced only a credit whose attempt was interrupted
        (`credit_unknown`) and refunded at once otherwise.
        """
        if not credit_unknown and not self._settles_by_entries():
            return await self._compensate(reason, failed_step)
        if await self._credit_landed():
            return self._finish(TransferStatus.COMPLETED, TransferStep.COMPLETED)
        return await self._compensate(reason, failed_step)

    async def _compensate(
        self, reason: TransferError, failed_step: TransferStep = TransferStep.CANCELLED
    ) -> TransferOutcome:
        """Refund the source. A cancellation of the workflow cannot interrupt this."""
        self._advance(TransferStatus.COMPENSATING, TransferStep.REFUNDING, reason)
        refund = await shielded(self._refund_until_settled())
        if refund is None:
            return self._finish(TransferStatus.COMPENSATED, TransferStep.RESOLVED_BY_OPERATOR)
        record_once(self._entries, refund)  # settled again: see _ending_recorded
        if refund.marker:  # the debit never applied, and now it never will
            if await self._ending_recorded(reason):
                return await self._settle(reason, failed_step)
            return self._finish(TransferStatus.FAILED, failed_step, reason)
        return self._finish(TransferStatus.COMPENSATED, TransferStep.REFUNDED, reason)

    async def _ending_recorded(self, reason: TransferError) -> bool:
        """Before reporting FAILED with a marker: where the source's entries cannot record this
        end (the marker had no account to be written on), the claim records it, so that a later
        run of the request ends so too instead of debiting an account opened since. True then,
        and the caller settles once more: a debit that a concurrent run of the request slipped in
        meanwhile is refunded (a credit found completes the transfer), so the status agrees with
        the entries. Once a run at most, and only since CLAIM_RECORDS_ENDING."""
        if self._legacy or self._claim_ended or not records_ending():
            return False
        self._claim_ended = True
        request = self._request
        try:
            return await shielded(
                self._execute(
                    LedgerActivities.end_claim,
                    ClaimEnding(
                        transfer_id=request.transfer_id,
                        fingerprint=request.fingerprint(),
                        source_account_id=request.source_account_id,
                        error=reason,
                    ),
                    policies.WAIT_ON_CANCEL,
                    f"record the end of {request.transfer_id} on its claim ({reason.type})",
                )
            )
        except Refused as refusal:  # a malformed id: the claim refused it first
            workflow.logger.error("transfer %s: %s", request.transfer_id, refusal)
            return False

    async def _refund_until_settled(self) -> AppliedEntry | None:
        """Infrastructure errors are retried by the policy; a refusal waits for an operator.

        Returns None when the operator settled the refund by hand (recorded on the shard), or
        the refund found there when the ledger had refunded first.
        """
        reason = self._error
        while True:
            try:
                return await self._refund()
            except Refused as refusal:
                decision = await self._operator_decision(refusal.error)
            if decision.resolved:
                # No longer stuck from here: a status read or another decision meanwhile sees
                # the resolve being applied (the same status: no command, replays unchanged).
                self._advance(TransferStatus.COMPENSATING, TransferStep.RESOLVING)
                if self._settles_by_entries():
                    refund = await self._record_settled_by_hand()
                    if refund is not None:  # the ledger refunded first: the operator must not
                        return refund
                self._error = resolved_by_operator(decision.note, reason, refused=self._error)
                return None
            self._advance(TransferStatus.COMPENSATING, TransferStep.REFUNDING, reason)

    async def _operator_decision(self, refusal: TransferError) -> OperatorDecision:
        """Say loudly that the refund is stuck, then wait for an operator's Update."""
        workflow.logger.error(
            "transfer %s: refund refused (%s: %s); waiting for an operator",
            self._request.transfer_id,
            refusal.type,
            refusal.message,
        )
        self._advance(TransferStatus.COMPENSATING, TransferStep.REFUND_STUCK, refusal)
        visible = refund_stuck_visible()
        if visible:
            workflow.upsert_search_attributes([REFUND_IS_STUCK.value_set(True)])
        await workflow.wait_condition(lambda: bool(self._decisions))
        if visible:  # the operator's decision is applied from here on
            workflow.upsert_search_attributes([REFUND_IS_STUCK.value_unset()])
        # The refund it asks for runs as a regular activity: scheduled with the Update's
        # acceptance, it cannot commit while the history still says the refund is stuck.
        self._durable = not self._legacy
        return self._decisions.pop()

    def _require_stuck_refund(self) -> None:
        if self._step != TransferStep.REFUND_STUCK:
            raise ValueError(f"no refund is stuck: the transfer is {self._status} ({self._step})")
        if self._decisions:
            raise ValueError("an operator decision is already being applied")

    # progress -----------------------------------------------------------------------------

    def _settles_by_entries(self) -> bool:
        """How a run that does not complete ends: by the entries (fence, then refund) since
        ENTRIES_DECIDE. A run started before it decides so too from the first such end it
        reaches live, and as it did where its history recorded that end (the patch, asked there
        and not at the start, is then found in the history or not)."""
        return not self._legacy or workflow.patched(SETTLE_BY_ENTRIES)

    def _start(self, step: TransferStep) -> None:
        self._legacy = not entries_decide()
        request = self._request
        updates: list[SearchAttributeUpdate[Any]] = [
            TRANSFER_STATUS.value_set(self._status),
            SOURCE_ACCOUNT_ID.value_set(request.source_account_id),
            TARGET_ACCOUNT_ID.value_set(request.target_account_id),
            AMOUNT.value_set(request.amount),
            CURRENCY.value_set(request.currency),
        ]
        if lean_history():  # the client sets them at start: each upsert is an event to store
            at_start = workflow.info().typed_search_attributes
            updates = [update for update in updates if at_start.get(update.key) != update.value]
        if updates:
            workflow.upsert_search_attributes(updates)
        self._advance(TransferStatus.RUNNING, step)

    def _advance(
        self, status: TransferStatus, step: TransferStep, error: TransferError | None = None
    ) -> None:
        """Move to a new step; the search attribute follows the status, the details the step."""
        if status != self._status:
            workflow.upsert_search_attributes([TRANSFER_STATUS.value_set(status)])
        self._status, self._step = status, step
        if error is not None:
            self._error = error
        workflow.set_current_details(self._details())

    def _finish(
        self, status: TransferStatus, step: TransferStep, error: TransferError | None = None
    ) -> TransferOutcome:
        self._advance(status, step, error)
        return self.status()

    def _record(self, *entries: AppliedEntry) -> None:
        self._entries.extend(entries)

    def _money(self, amount: int | None = None) -> str:
        """'12.34 USD': `amount`, else what the saga moves."""
        currency = self._request.currency
        return f"{format_amount(self._amount if amount is None else amount, currency)} {currency}"

    def _accounts(self) -> str:
        return f"{self._request.source_account_id} -> {self._request.target_account_id}"

    def _details(self) -> str:
        """The Web UI's current details: what is happening now, in one or two lines."""
        text = f"**{self._status}** ({self._step}): {self._money()} {self._accounts()}"
        if self._error is not None:
            text += f"\n\n{self._error.type}: {self._error.message}"
        if self._status == TransferStatus.HELD and self._expires_at is not None:
            text += (
                f"\n\nHeld until {self._expires_at:%Y-%m-%d %H:%M:%S %Z} by the shard's clock: "
                "send the Update `post` (optionally with an amount) or `void`."
            )
        if self._step == TransferStep.REFUND_STUCK:
            text += (
                "\n\nThe refund was refused and waits for an operator: send the Update "
                "`retry_compensation` once fixed, or `resolve_compensation(note)` "
                "if it was settled by hand."
            )
        return text
