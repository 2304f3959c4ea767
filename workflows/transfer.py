"""TransferWorkflow: move an amount between two accounts, as a saga when they live on two shards."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from transfers.money import format_amount
    from workflows import policies
    from workflows.models import (
        AppliedEntry,
        Route,
        StepRequest,
        TransferError,
        TransferOutcome,
        TransferRequest,
        TransferStatus,
        WithinShardRequest,
    )
    from workflows.search_attributes import (
        AMOUNT,
        CURRENCY,
        SOURCE_ACCOUNT_ID,
        TARGET_ACCOUNT_ID,
        TRANSFER_STATUS,
    )

T = TypeVar("T")

REFUND_STUCK = "refund-stuck"
CANCELLED = "Cancelled"


class _Refused(Exception):
    """A step was refused for a business reason; that step applied nothing."""

    def __init__(self, error: TransferError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class _OperatorDecision:
    """What an operator said about a stuck refund: try again, or it was settled by hand."""

    resolved: bool
    note: str = ""


# A request that fails validation at decode (a client that bypassed the pydantic converter)
# fails the workflow at once, instead of failing its workflow task over and over.
@workflow.defn(name="TransferWorkflow", failure_exception_types=[ValidationError])
class TransferWorkflow:
    """Debit the source and credit the target; refund the source if the credit is refused."""

    @workflow.init
    def __init__(self, request: TransferRequest) -> None:
        self._request = request
        self._status = TransferStatus.RUNNING
        self._step = "started"
        self._entries: list[AppliedEntry] = []
        self._error: TransferError | None = None
        self._decisions: list[_OperatorDecision] = []  # at most one, see _require_stuck_refund

    @workflow.run
    async def run(self, request: TransferRequest) -> TransferOutcome:
        self._start()
        try:
            route = await self._route()
        except asyncio.CancelledError:
            return self._finish(TransferStatus.FAILED, "cancelled", _cancelled("before the debit"))
        if route.same_shard:
            return await self._transfer_within_shard()

        self._advance(TransferStatus.RUNNING, "debiting")
        try:
            self._record(await self._debit())
        except _Refused as refusal:
            return await self._refuse("debit-refused", refusal.error)
        except asyncio.CancelledError:
            return await self._compensate(_cancelled("before the credit"))

        self._advance(TransferStatus.DEBITED, "crediting")
        try:
            self._record(await self._credit())
        except _Refused as refusal:
            return await self._compensate(refusal.error)
        except asyncio.CancelledError:
            if not await self._credit_landed():
                return await self._compensate(_cancelled("before the credit was applied"))
        return self._finish(TransferStatus.COMPLETED, "completed")

    @workflow.query
    def status(self) -> TransferOutcome:
        """Where the transfer is: status, step, entries applied so far, error."""
        return TransferOutcome(
            transfer_id=self._request.transfer_id,
            status=self._status,
            step=self._step,
            entries=tuple(self._entries),
            error=self._error,
        )

    @workflow.update
    def retry_compensation(self) -> None:
        """Operator: try the stuck refund again, once its cause is fixed."""
        self._decisions.append(_OperatorDecision(resolved=False))

    @retry_compensation.validator
    def _validate_retry(self) -> None:
        self._require_stuck_refund()

    @workflow.update
    def resolve_compensation(self, note: str) -> None:
        """Operator: the refund was settled outside this workflow; `note` says how."""
        self._decisions.append(_OperatorDecision(resolved=True, note=note))

    @resolve_compensation.validator
    def _validate_resolve(self, note: str) -> None:
        self._require_stuck_refund()
        if not note.strip():
            raise ValueError("say how the refund was settled")

    # the steps ----------------------------------------------------------------------------

    async def _route(self) -> Route:
        request = self._request
        return await self._call(
            workflow.execute_local_activity_method(
                LedgerActivities.route,
                request,
                start_to_close_timeout=policies.ROUTE_START_TO_CLOSE,
                retry_policy=policies.ROUTE_RETRY,
                cancellation_type=policies.ABANDON_ON_CANCEL,
                summary=f"route {request.source_account_id} -> {request.target_account_id}",
            )
        )

    async def _transfer_within_shard(self) -> TransferOutcome:
        """Both accounts on one shard: one atomic activity, no saga."""
        request = self._request
        self._advance(TransferStatus.RUNNING, "transferring")
        try:
            entries = await self._call(
                workflow.execute_activity_method(
                    LedgerActivities.transfer_within_shard,
                    WithinShardRequest(
                        transfer_id=request.transfer_id,
                        source_account_id=request.source_account_id,
                        target_account_id=request.target_account_id,
                        amount=request.amount,
                        currency=request.currency,
                    ),
                    start_to_close_timeout=policies.STEP_START_TO_CLOSE,
                    schedule_to_close_timeout=policies.STEP_SCHEDULE_TO_CLOSE,
                    retry_policy=policies.STEP_RETRY,
                    cancellation_type=policies.WAIT_ON_CANCEL,
                    summary=f"transfer {self._money()} {self._accounts()} within one shard",
                )
            )
        except _Refused as refusal:
            return await self._refuse("refused", refusal.error)
        except asyncio.CancelledError:
            if not await self._credit_landed():
                return self._finish(TransferStatus.FAILED, "cancelled", _cancelled("before commit"))
            return self._finish(TransferStatus.COMPLETED, "completed")
        self._record(*entries)
        return self._finish(TransferStatus.COMPLETED, "completed")

    async def _debit(self) -> AppliedEntry:
        request = self._request
        return await self._run_step(
            LedgerActivities.debit,
            request.source_account_id,
            policies.ABANDON_ON_CANCEL,
            f"debit {self._money()} from {request.source_account_id}",
        )

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

    async def _fence_credit(self) -> AppliedEntry:
        request = self._request
        return await self._run_step(
            LedgerActivities.fence_credit,
            request.target_account_id,
            policies.WAIT_ON_CANCEL,
            f"settle the credit of {self._money()} to {request.target_account_id}",
        )

    # compensation -------------------------------------------------------------------------

    async def _credit_landed(self) -> bool:
        """After a cancelled credit attempt: did it commit? If not, it is fenced out for good.

        An attempt can end without its outcome being known (cancelled, timed out, connection lost
        at commit); refunding then could pay twice. The fence answers on the target's shard.
        """
        self._advance(self._status, "settling-credit")
        fence = await _shielded(self._fence_credit())
        if fence.marker:
            return False
        self._record(fence)
        return True

    async def _refuse(self, step: str, refusal: TransferError) -> TransferOutcome:
        """FAILED, nothing moved. A refund marker on the source keeps it so: a resubmission of
        this id after Temporal's retention has forgotten the workflow is refused by the shard."""
        try:
            await _shielded(self._refund())
        except _Refused as marker_refusal:  # a refund is recorded already: the guard is there
            workflow.logger.info("transfer %s: %s", self._request.transfer_id, marker_refusal)
        return self._finish(TransferStatus.FAILED, step, refusal)

    async def _compensate(self, reason: TransferError) -> TransferOutcome:
        """Refund the source. A cancellation of the workflow cannot interrupt this."""
        self._advance(TransferStatus.COMPENSATING, "refunding", reason)
        refund = await _shielded(self._refund_until_settled())
        if refund is None:
            return self._finish(TransferStatus.COMPENSATED, "resolved-by-operator")
        self._record(refund)
        if refund.marker:  # the debit never applied, and now it never will
            return self._finish(TransferStatus.FAILED, "cancelled", reason)
        return self._finish(TransferStatus.COMPENSATED, "refunded", reason)

    async def _refund_until_settled(self) -> AppliedEntry | None:
        """Infrastructure errors are retried by the policy; a refusal waits for an operator.

        Returns None when the operator settled the refund by hand.
        """
        reason = self._error
        while True:
            try:
                return await self._refund()
            except _Refused as refusal:
                decision = await self._operator_decision(refusal.error)
            if decision.resolved:
                self._error = _resolved(decision.note, reason, refused=self._error)
                return None
            self._advance(TransferStatus.COMPENSATING, "refunding", reason)

    async def _operator_decision(self, refusal: TransferError) -> _OperatorDecision:
        """Say loudly that the refund is stuck, then wait for an operator's Update."""
        workflow.logger.error(
            "transfer %s: refund refused (%s: %s); waiting for an operator",
            self._request.transfer_id,
            refusal.type,
            refusal.message,
        )
        self._advance(TransferStatus.COMPENSATING, REFUND_STUCK, refusal)
        await workflow.wait_condition(lambda: bool(self._decisions))
        return self._decisions.pop()

    # plumbing -----------------------------------------------------------------------------

    async def _run_step(
        self,
        step: Callable[[LedgerActivities, StepRequest], Awaitable[AppliedEntry]],
        account_id: str,
        cancellation: workflow.ActivityCancellationType,
        summary: str,
    ) -> AppliedEntry:
        request = self._request
        return await self._call(
            workflow.execute_activity_method(
                step,
                StepRequest(
                    transfer_id=request.transfer_id,
                    account_id=account_id,
                    amount=request.amount,
                    currency=request.currency,
                ),
                start_to_close_timeout=policies.STEP_START_TO_CLOSE,
                schedule_to_close_timeout=policies.STEP_SCHEDULE_TO_CLOSE,
                retry_policy=policies.STEP_RETRY,
                cancellation_type=cancellation,
                summary=summary,
            )
        )

    async def _call(self, activity: Coroutine[Any, Any, T]) -> T:
        """Await an activity; its failure is either a business refusal or a cancellation."""
        try:
            return await activity
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                refusal = TransferError(type=cause.type or "Refused", message=cause.message)
                raise _Refused(refusal) from error
            # Steps retry infrastructure errors forever: any other failure means the attempt
            # was stopped by a cancellation of the workflow.
            if is_cancelled_exception(error) or workflow.cancellation_reason() is not None:
                raise asyncio.CancelledError from error
            raise

    def _start(self) -> None:
        request = self._request
        workflow.upsert_search_attributes(
            [
                TRANSFER_STATUS.value_set(self._status),
                SOURCE_ACCOUNT_ID.value_set(request.source_account_id),
                TARGET_ACCOUNT_ID.value_set(request.target_account_id),
                AMOUNT.value_set(request.amount),
                CURRENCY.value_set(request.currency),
            ]
        )
        self._advance(TransferStatus.RUNNING, "routing")

    def _advance(
        self, status: TransferStatus, step: str, error: TransferError | None = None
    ) -> None:
        """Move to a new step; the search attribute follows the status, the details the step."""
        if status != self._status:
            workflow.upsert_search_attributes([TRANSFER_STATUS.value_set(status)])
        self._status, self._step = status, step
        if error is not None:
            self._error = error
        workflow.set_current_details(self._details())

    def _finish(
        self, status: TransferStatus, step: str, error: TransferError | None = None
    ) -> TransferOutcome:
        self._advance(status, step, error)
        return self.status()

    def _record(self, *entries: AppliedEntry) -> None:
        self._entries.extend(entries)

    def _require_stuck_refund(self) -> None:
        if self._step != REFUND_STUCK:
            raise ValueError(f"no refund is stuck: the transfer is {self._status} ({self._step})")
        if self._decisions:
            raise ValueError("an operator decision is already being applied")

    def _money(self) -> str:
        request = self._request
        return f"{format_amount(request.amount, request.currency)} {request.currency}"

    def _accounts(self) -> str:
        return f"{self._request.source_account_id} -> {self._request.target_account_id}"

    def _details(self) -> str:
        """The Web UI's current details: what is happening now, in one or two lines."""
        text = f"**{self._status}** ({self._step}): {self._money()} {self._accounts()}"
        if self._error is not None:
            text += f"\n\n{self._error.type}: {self._error.message}"
        if self._step == REFUND_STUCK:
            text += (
                "\n\nThe refund was refused and waits for an operator: send the Update "
                "`retry_compensation` once fixed, or `resolve_compensation(note)` "
                "if it was settled by hand."
            )
        return text


def _cancelled(when: str) -> TransferError:
    return TransferError(type=CANCELLED, message=f"transfer cancelled {when}")


def _resolved(
    note: str, reason: TransferError | None, *, refused: TransferError | None
) -> TransferError:
    """The final error of a refund that an operator settled by hand: their note comes first."""
    message = note
    if refused is not None:
        message += f" (the refund was refused: {refused.type})"
    if reason is not None:
        message += f"; compensating for {reason.type}: {reason.message}"
    return TransferError(type="ResolvedByOperator", message=message)


async def _shielded(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` to its end even if the workflow is cancelled while it runs."""
    task = asyncio.create_task(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                return task.result()
