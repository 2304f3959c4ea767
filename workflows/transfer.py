"""TransferWorkflow: move an amount between two accounts, as a saga when they live on two shards."""

from __future__ import annotations

import asyncio

from pydantic import ValidationError
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.models import Route, WithinShardRequest
    from shards.errors import IdempotencyConflict
    from workflows import policies
    from workflows.models import (
        AppliedEntry,
        TransferError,
        TransferOutcome,
        TransferRequest,
        TransferStatus,
        TransferStep,
    )
    from workflows.readable import Readable
    from workflows.saga import LedgerSaga
    from workflows.saga_steps import Refused, call, cancelled, shielded


# A request that fails validation at decode (a client that bypassed the pydantic converter)
# fails the workflow at once, instead of failing its workflow task over and over.
@workflow.defn(name="TransferWorkflow", failure_exception_types=[ValidationError])
class TransferWorkflow(LedgerSaga):
    """Debit the source and credit the target; refund the source if the credit is refused."""

    @workflow.init  # the request is known before run: the Update validators read it
    def __init__(self, request: TransferRequest) -> None:
        super().__init__(request)

    @workflow.run
    async def run(self, request: TransferRequest) -> TransferOutcome:
        """Claim the id, route, debit and credit (one shard: one transaction); refund if refused."""
        self._start(TransferStep.ROUTING)
        try:
            route = await (self._route() if self._legacy else self._claim())
        except Refused as refusal:
            return await self._claim_refused(refusal.error)
        except asyncio.CancelledError:
            reason = cancelled("before its first step was recorded")
            if not self._settles_by_entries():
                return self._finish(TransferStatus.FAILED, TransferStep.CANCELLED, reason)
            refused = None if self._legacy else await self._claimed_after_cancel()
            if refused:
                return await self._claim_refused(refused)
            return await self._settle(reason)
        if route.same_shard:
            return await self._transfer_within_shard()

        self._advance(TransferStatus.RUNNING, TransferStep.DEBITING)
        try:
            self._record(await self._debit())
        except Refused as refusal:
            return await self._refused(TransferStep.DEBIT_REFUSED, refusal.error)
        except asyncio.CancelledError:
            return await self._settle(cancelled("before the credit"))

        self._advance(TransferStatus.DEBITED, TransferStep.CREDITING)
        try:
            self._record(await self._credit())
        except Refused as refusal:
            return await self._settle(refusal.error)
        except asyncio.CancelledError:
            reason = cancelled("before the credit was applied")
            return await self._settle(reason, credit_unknown=True)
        return self._finish(TransferStatus.COMPLETED, TransferStep.COMPLETED)

    # the steps ----------------------------------------------------------------------------

    async def _route(self) -> Route:
        request = self._request
        return await call(
            workflow.execute_local_activity_method(
                LedgerActivities.route,
                request,
                start_to_close_timeout=policies.ROUTE_START_TO_CLOSE,
                retry_policy=policies.ROUTE_RETRY,
                cancellation_type=policies.ABANDON_ON_CANCEL,
                summary=Readable(
                    f"route {request.source_account_id} -> {request.target_account_id}"
                ),
            )
        )

    async def _transfer_within_shard(self) -> TransferOutcome:
        """Both accounts on one shard: one atomic activity, no saga."""
        request = self._request
        self._advance(TransferStatus.RUNNING, TransferStep.TRANSFERRING)
        try:
            entries = await self._execute(
                LedgerActivities.transfer_within_shard,
                WithinShardRequest(
                    transfer_id=request.transfer_id,
                    source_account_id=request.source_account_id,
                    target_account_id=request.target_account_id,
                    amount=request.amount,
                    currency=request.currency,
                    fingerprint=self._fingerprint(),
                ),
                policies.WAIT_ON_CANCEL,
                f"transfer {self._money()} {self._accounts()} within one shard",
            )
        except Refused as refusal:
            return await self._refused(TransferStep.REFUSED, refusal.error)
        except asyncio.CancelledError:
            reason = cancelled("before commit")
            if self._settles_by_entries():
                return await self._settle(reason)
            if await self._credit_landed():
                return self._finish(TransferStatus.COMPLETED, TransferStep.COMPLETED)
            return self._finish(TransferStatus.FAILED, TransferStep.CANCELLED, reason)
        self._record(*entries)
        return self._finish(TransferStatus.COMPLETED, TransferStep.COMPLETED)

    async def _debit(self) -> AppliedEntry:
        request = self._request
        return await self._run_step(
            LedgerActivities.debit,
            request.source_account_id,
            policies.ABANDON_ON_CANCEL,
            f"debit {self._money()} from {request.source_account_id}",
        )

    # refusal ----------------------------------------------------------------------------

    async def _claim_refused(self, refusal: TransferError) -> TransferOutcome:
        """Another request owns the id: FAILED, nothing of this one is written. Or this request
        ended before with nothing moved, as its claim recorded (its source had no account then):
        it ends so again, by its entries (fence, refund), FAILED with the first run's error."""
        if self._ended_before(refusal):
            return await self._settle(refusal, TransferStep.REFUSED)
        return self._finish(TransferStatus.FAILED, TransferStep.REFUSED, refusal)

    async def _refused(self, step: TransferStep, refusal: TransferError) -> TransferOutcome:
        """The debit (or the same-shard transfer) was refused: it never applied, and a refund
        marker keeps it so (a resubmission after Temporal's retention is refused by the shard).

        A refusal for a compensation found on the shard (AlreadyCompensated: a re-run, or a
        resubmission, of a transfer that ended) ends as that compensation did; one for another
        request's entries (IdempotencyConflict) ends at once: nothing of this request is written.
        """
        if not self._settles_by_entries():
            return await self._refuse(step, refusal)
        if refusal.type == IdempotencyConflict.__name__:
            return self._finish(TransferStatus.FAILED, step, refusal)
        return await self._settle(refusal, step)

    async def _refuse(self, step: TransferStep, refusal: TransferError) -> TransferOutcome:
        """Before ENTRIES_DECIDE: FAILED, with a refund marker on the source."""
        try:
            await shielded(self._refund())
        except Refused as marker_refusal:  # a refund is recorded already: the guard is there
            workflow.logger.info("transfer %s: %s", self._request.transfer_id, marker_refusal)
        return self._finish(TransferStatus.FAILED, step, refusal)
