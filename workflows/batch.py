"""TransferBatchWorkflow: many transfers, each its own saga, their steps applied in batches.

Each transfer ends as `TransferWorkflow`'s entries-decide path would end it alone (COMPLETED,
FAILED or COMPENSATED, with its error), and a refused transfer never refuses the rest. The steps:
claim every id; debit the claimed; credit the debited; then settle every transfer that did not
complete as its entries say (fence its credit on the target's shard; where no credit landed,
refund the source: a marker where nothing was taken). Each step is one batched ledger activity:
one transaction per shard for the whole batch.

Where the single saga differs: both sides of a same-shard transfer are a debit and a credit, not
one transaction (a refused credit there is COMPENSATED, not FAILED); and a refund refused for a
business reason is tried again every BATCH_REFUND_RETRY_INTERVAL, with the batch's `RefundStuck`
search attribute set, instead of only when an operator says so. Meanwhile an operator may say so
for one transfer, as for a single one: the Updates `retry_compensation(transfer_id)` (try it now)
and `resolve_compensation(transfer_id, note)` (it was settled by hand: a refund marker on the
source, then the transfer ends COMPENSATED).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from activities.batch import BatchActivities
    from activities.batch_models import (
        BatchClaim,
        BatchClaims,
        BatchEndings,
        BatchStepResults,
        BatchSteps,
        StepOutcome,
    )
    from activities.ledger import LedgerActivities
    from activities.models import ClaimEnding, StepRequest
    from shards.errors import IdempotencyConflict
    from shards.money import format_amount
    from workflows import policies
    from workflows.batch_models import (
        BatchOutcome,
        BatchRequest,
        count_statuses,
        one_currency_total,
        summary_line,
    )
    from workflows.models import (
        AppliedEntry,
        TransferError,
        TransferOutcome,
        TransferRequest,
        TransferStatus,
        TransferStep,
    )
    from workflows.operator import OperatorDecision, batch_takes_decisions, resolved_by_operator
    from workflows.saga_steps import (
        Refused,
        cancelled,
        ended_before,
        record_once,
        records_ending,
        run_step,
        shielded,
    )
    from workflows.search_attributes import AMOUNT, BATCH_ID, CURRENCY, REFUND_IS_STUCK


@dataclass
class _Transfer:
    """One transfer's saga within the batch: where it is, as its status query would say."""

    request: TransferRequest
    # The digest every step of it carries: computed once (a digest costs a batch of 1,000 a
    # few milliseconds of the workflow task per step).
    fingerprint: str
    status: TransferStatus = TransferStatus.RUNNING
    step: TransferStep = TransferStep.STARTED
    error: TransferError | None = None
    entries: list[AppliedEntry] = field(default_factory=list)
    # Its claim records how this request ends (found there, or recorded by _record_endings).
    claim_ended: bool = False

    def advance(
        self, status: TransferStatus, step: TransferStep, error: TransferError | None = None
    ) -> None:
        self.status, self.step = status, step
        if error is not None:
            self.error = error

    def outcome(self) -> TransferOutcome:
        return TransferOutcome(
            transfer_id=self.request.transfer_id,
            status=self.status,
            step=self.step,
            error=self.error,
        )


@dataclass(frozen=True)
class _Unfinished:
    """A transfer to settle by its entries: why it stopped, and its step if it ends FAILED."""

    transfer: _Transfer
    reason: TransferError
    failed_step: TransferStep = TransferStep.CANCELLED


R = TypeVar("R")
BatchStep = Callable[[BatchActivities, BatchSteps], Awaitable[BatchStepResults]]


@workflow.defn(name="TransferBatchWorkflow", failure_exception_types=[ValidationError])
class TransferBatchWorkflow:
    """Claim, debit, credit and settle a batch of transfers, each ending on its own."""

    @workflow.init
    def __init__(self, batch: BatchRequest) -> None:
        self._batch = batch
        self._transfers = [_Transfer(request, request.fingerprint()) for request in batch.transfers]
        self._phase = TransferStep.STARTED
        # An operator's decisions about stuck refunds, by transfer id, until the refunds' loop
        # takes them; it takes them once this run is past BATCH_OPERATOR_DECISIONS.
        self._decisions: dict[str, OperatorDecision] = {}
        self._takes_decisions = False
        # The stuck refunds whose next try is being waited for: those a decision may be about.
        self._waiting: set[str] = set()

    @workflow.query
    def status(self) -> BatchOutcome:
        """Every transfer's status, step and error, and the counts per status."""
        return BatchOutcome(
            batch_id=self._batch.batch_id,
            transfers=tuple(transfer.outcome() for transfer in self._transfers),
            counts=self._counts(),
        )

    @workflow.query
    def counts(self) -> dict[str, int]:
        """How many transfers have each status (cheap: for progress bars)."""
        return self._counts()

    @workflow.update
    def retry_compensation(self, transfer_id: str) -> None:
        """Operator: try this transfer's stuck refund again now, its cause fixed (the batch
        tries it again every BATCH_REFUND_RETRY_INTERVAL anyway)."""
        self._decisions[transfer_id] = OperatorDecision(resolved=False)

    @retry_compensation.validator
    def _validate_retry(self, transfer_id: str) -> None:
        self._require_stuck_refund(transfer_id)

    @workflow.update
    def resolve_compensation(self, transfer_id: str, note: str) -> None:
        """Operator: this transfer's refund was settled outside the ledger; `note` says how."""
        self._decisions[transfer_id] = OperatorDecision(resolved=True, note=note)

    @resolve_compensation.validator
    def _validate_resolve(self, transfer_id: str, note: str) -> None:
        self._require_stuck_refund(transfer_id)
        if not note.strip():
            raise ValueError("say how the refund was settled")

    def _require_stuck_refund(self, transfer_id: str) -> None:
        transfer = next((t for t in self._transfers if t.request.transfer_id == transfer_id), None)
        if transfer is None:
            raise ValueError(f"batch {self._batch.batch_id} holds no transfer {transfer_id}")
        if transfer.step != TransferStep.REFUND_STUCK:
            raise ValueError(
                f"no refund is stuck: the transfer is {transfer.status} ({transfer.step})"
            )
        if not self._takes_decisions:
            raise ValueError(
                "this batch started before batches took operator decisions: its refund is "
                "tried again every minute"
            )
        if transfer_id in self._decisions:
            raise ValueError("an operator decision is already being applied")
        if transfer_id not in self._waiting:
            raise ValueError("the batch is settling other transfers first: ask again in a moment")

    @workflow.run
    async def run(self, batch: BatchRequest) -> BatchOutcome:
        """Claim, debit, credit; then settle what did not complete. Cancelling it: what is not
        debited ends FAILED (cancelled); what is debited and not credited is fenced, then
        refunded, shielded from the cancellation."""
        self._start()
        try:
            claimed, ended = await self._claim(self._transfers)
        except asyncio.CancelledError:  # the claims' commit may be lost: claim again, to the end
            claimed, ended = await shielded(self._claim(self._transfers))
            reason = cancelled("before its first step was recorded")
            return await self._finish(ended + [_Unfinished(t, reason) for t in claimed])
        try:
            debited, unfinished = await self._debit(claimed)
        except asyncio.CancelledError:
            reason = cancelled("before the credit")
            return await self._finish(ended + [_Unfinished(t, reason) for t in claimed])
        unfinished = ended + unfinished
        try:
            unfinished += await self._credit(debited)
        except asyncio.CancelledError:
            reason = cancelled("before the credit was applied")
            unfinished += [_Unfinished(t, reason) for t in debited]
        return await self._finish(unfinished)

    # the steps ----------------------------------------------------------------------------

    async def _claim(
        self, transfers: Sequence[_Transfer]
    ) -> tuple[list[_Transfer], list[_Unfinished]]:
        """Own every transfer id: the claimed; and those whose request ended before with nothing
        moved, as their claim recorded, to settle by their entries (FAILED with the first run's
        error). Those another request owns end FAILED at once, refused."""
        self._enter(TransferStep.ROUTING, transfers)
        claims = BatchClaims(
            claims=tuple(
                BatchClaim(transfer_id=t.request.transfer_id, fingerprint=t.fingerprint)
                for t in transfers
            )
        )
        found = await _batched(
            BatchActivities.claim_batch,
            claims,
            f"claim {len(transfers):,} transfer ids",
            policies.ABANDON_ON_CANCEL,
        )
        claimed, ended = [], []
        for transfer, refusal in zip(transfers, found.refusals, strict=True):
            if refusal is None:
                claimed.append(transfer)
            elif ended_before(refusal):
                transfer.claim_ended = True
                ended.append(_Unfinished(transfer, refusal, TransferStep.REFUSED))
            else:
                transfer.advance(TransferStatus.FAILED, TransferStep.REFUSED, refusal)
        self._show()
        return claimed, ended

    async def _debit(self, claimed: list[_Transfer]) -> tuple[list[_Transfer], list[_Unfinished]]:
        """Debit the sources: the debited, and the refused to settle (a refusal for another
        request's entries ends FAILED at once: nothing of this request is written)."""
        self._enter(TransferStep.DEBITING, claimed, TransferStatus.RUNNING)
        results = await self._step(
            BatchActivities.debit_batch, claimed, policies.ABANDON_ON_CANCEL, "debit", source=True
        )
        debited, refused = [], []
        for transfer, result in zip(claimed, results, strict=True):
            if isinstance(result, AppliedEntry):
                transfer.entries.append(result)
                transfer.advance(TransferStatus.DEBITED, TransferStep.DEBITING)
                debited.append(transfer)
            elif result.type == IdempotencyConflict.__name__:
                transfer.advance(TransferStatus.FAILED, TransferStep.DEBIT_REFUSED, result)
            else:
                refused.append(_Unfinished(transfer, result, TransferStep.DEBIT_REFUSED))
        self._show()
        return debited, refused

    async def _credit(self, debited: list[_Transfer]) -> list[_Unfinished]:
        """Credit the targets: the refused, to settle."""
        self._enter(TransferStep.CREDITING, debited, TransferStatus.DEBITED)
        results = await self._step(
            BatchActivities.credit_batch, debited, policies.WAIT_ON_CANCEL, "credit"
        )
        refused = []
        for transfer, result in zip(debited, results, strict=True):
            if isinstance(result, AppliedEntry):
                transfer.entries.append(result)
                transfer.advance(TransferStatus.COMPLETED, TransferStep.COMPLETED)
            else:
                refused.append(_Unfinished(transfer, result))
        self._show()
        return refused

    # settling ----------------------------------------------------------------------------

    async def _finish(self, unfinished: list[_Unfinished]) -> BatchOutcome:
        """Settle what did not complete, shielded from a cancellation; then the outcome."""
        if unfinished:
            await shielded(self._settle(unfinished))
        self._phase = TransferStep.COMPLETED
        outcome = self.status()
        workflow.upsert_memo({"counts": outcome.counts})
        self._show()
        return outcome

    async def _settle(self, unfinished: list[_Unfinished]) -> None:
        """Fence each credit: found, the transfer completed after all; else refund the source."""
        transfers = [item.transfer for item in unfinished]
        self._enter(TransferStep.SETTLING_CREDIT, transfers)
        fences = await self._step(
            BatchActivities.fence_credit_batch, transfers, policies.WAIT_ON_CANCEL, "fence"
        )
        to_refund = []
        for item, fence in zip(unfinished, fences, strict=True):
            if isinstance(fence, AppliedEntry) and not fence.marker:
                item.transfer.entries.append(fence)
                item.transfer.advance(TransferStatus.COMPLETED, TransferStep.COMPLETED)
                continue
            if isinstance(fence, TransferError):  # a fence never refuses since entries-decide
                workflow.logger.error("transfer %s: %s", item.transfer.request.transfer_id, fence)
            item.transfer.advance(TransferStatus.COMPENSATING, TransferStep.REFUNDING, item.reason)
            to_refund.append(item)
        await self._refund_until_done(to_refund)

    async def _refund_until_done(self, to_refund: list[_Unfinished]) -> None:
        """Refund each source (a marker where nothing was taken: FAILED at its failed step);
        a refused refund is tried again after BATCH_REFUND_RETRY_INTERVAL, for ever, or sooner
        when an operator asks, unless an operator resolves it."""
        self._phase = TransferStep.REFUNDING
        stuck_shown = False
        decided = False  # the round an operator's decision asked for: see run_step's `durable`
        while to_refund:
            transfers = [item.transfer for item in to_refund]
            results = await self._step(
                BatchActivities.refund_batch, transfers, policies.WAIT_ON_CANCEL, "refund",
                source=True, durable=decided,
            )  # fmt: skip
            stuck, marked = [], []
            for item, refund in zip(to_refund, results, strict=True):
                transfer = item.transfer
                if isinstance(refund, TransferError):
                    transfer.advance(TransferStatus.COMPENSATING, TransferStep.REFUND_STUCK, refund)
                    stuck.append(item)
                    continue
                record_once(transfer.entries, refund)
                if refund.marker and _settled_by_hand_elsewhere(transfer):
                    error = resolved_by_operator(SETTLED_ELSEWHERE, item.reason, refused=None)
                    transfer.advance(
                        TransferStatus.COMPENSATED, TransferStep.RESOLVED_BY_OPERATOR, error
                    )
                elif refund.marker:  # the debit never applied, and now it never will
                    marked.append(item)
                else:
                    transfer.advance(TransferStatus.COMPENSATED, TransferStep.REFUNDED, item.reason)
            if stuck:  # asked here, before anything else awaits: see _require_stuck_refund
                self._takes_decisions = batch_takes_decisions()
            await self._end_failed(marked)
            stuck_shown = _show_stuck(bool(stuck), stuck_shown)
            self._show()
            to_refund, decided = await self._between_tries(stuck) if stuck else ([], False)
        _show_stuck(False, stuck_shown)  # the last stuck ones were resolved by hand

    async def _between_tries(self, stuck: list[_Unfinished]) -> tuple[list[_Unfinished], bool]:
        """Wait BATCH_REFUND_RETRY_INTERVAL, or until an operator decides about one of `stuck`;
        record those resolved by hand. The refunds to try again, and whether a decision came."""
        if self._takes_decisions:
            self._waiting = {item.transfer.request.transfer_id for item in stuck}
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: not self._waiting.isdisjoint(self._decisions),
                    timeout=policies.BATCH_REFUND_RETRY_INTERVAL,
                )
            self._waiting = set()
        else:
            await workflow.sleep(policies.BATCH_REFUND_RETRY_INTERVAL)
        decided = bool(self._decisions)
        # Every one of them leaves REFUND_STUCK before anything awaits: a decision about it
        # is refused from here, none is left behind unapplied while its refund is tried.
        again, resolved = [], []
        for item in stuck:
            decision = self._decisions.pop(item.transfer.request.transfer_id, None)
            if decision is not None and decision.resolved:
                resolved.append((item, decision.note, item.transfer.error))
                item.transfer.advance(TransferStatus.COMPENSATING, TransferStep.RESOLVING)
            else:  # tried again with the reason it compensates for
                item.transfer.advance(
                    TransferStatus.COMPENSATING, TransferStep.REFUNDING, item.reason
                )
                again.append(item)
        self._show()
        for item, note, refused in resolved:
            await self._resolve(item, note, refused)
        return again, decided

    async def _resolve(self, item: _Unfinished, note: str, refused: TransferError | None) -> None:
        """An operator settled the refund by hand (`refused`: why it was stuck): a refund
        marker on the source keeps any refund of this request from landing later; the transfer
        ends COMPENSATED. A refund found there instead (the ledger refunded first) is the end:
        the operator must not pay."""
        transfer = item.transfer
        request = transfer.request
        money = f"{format_amount(request.amount, request.currency)} {request.currency}"
        try:
            found = await run_step(
                LedgerActivities.settled_by_hand,
                self._step_request(transfer, source=True),
                summary=f"record the refund of {money} to {request.source_account_id} as "
                "settled by hand",
                cancellation=policies.WAIT_ON_CANCEL,
                durable=True,  # recorded with the Update's acceptance, before it can commit
            )
        except Refused as refusal:  # another request's entries: no refund of ours lands there
            workflow.logger.error("transfer %s: %s", request.transfer_id, refusal)
        else:
            record_once(transfer.entries, found)
            if not found.marker:
                transfer.advance(TransferStatus.COMPENSATED, TransferStep.REFUNDED, item.reason)
                return
        error = resolved_by_operator(note, item.reason, refused=refused)
        transfer.advance(TransferStatus.COMPENSATED, TransferStep.RESOLVED_BY_OPERATOR, error)

    async def _end_failed(self, marked: list[_Unfinished]) -> None:
        """End FAILED the transfers whose refund was a marker. Where their source's entries
        cannot say so (no account held the marker), their claim records the end first, then they
        settle once more (see LedgerSaga._ending_recorded): a debit that a concurrent run of the
        request slipped in is refunded, a credit found completes the transfer."""
        to_record = [item for item in marked if not item.transfer.claim_ended]
        recorded = await self._record_endings(to_record) if to_record else set()
        for item in marked:
            if id(item) not in recorded:
                item.transfer.advance(TransferStatus.FAILED, item.failed_step, item.reason)
        again = [item for item in to_record if id(item) in recorded]
        if again:
            await self._settle(again)

    async def _record_endings(self, items: list[_Unfinished]) -> set[int]:
        """`end_claim_batch` for `items` (since CLAIM_RECORDS_ENDING): the ids of those items
        whose claim now records their end."""
        if not records_ending():
            return set()
        for item in items:
            item.transfer.claim_ended = True
        endings = BatchEndings(
            endings=tuple(
                ClaimEnding(
                    transfer_id=item.transfer.request.transfer_id,
                    fingerprint=item.transfer.fingerprint,
                    source_account_id=item.transfer.request.source_account_id,
                    error=item.reason,
                )
                for item in items
            )
        )
        done = await _batched(
            BatchActivities.end_claim_batch,
            endings,
            f"record the end of {len(items):,} transfers on their claims",
            policies.WAIT_ON_CANCEL,
        )
        return {id(item) for item, ended in zip(items, done.recorded, strict=True) if ended}

    async def _step(
        self,
        step: BatchStep,
        transfers: Sequence[_Transfer],
        cancellation: workflow.ActivityCancellationType,
        verb: str,
        *,
        source: bool = False,
        durable: bool = False,
    ) -> tuple[StepOutcome, ...]:
        """One batched ledger step for `transfers`, on each one's source or target."""
        steps = BatchSteps(steps=tuple(self._step_request(t, source=source) for t in transfers))
        try:
            summary = f"{verb} {len(transfers):,} transfers"
            done = await _batched(step, steps, summary, cancellation, durable=durable)
        except Refused as refusal:  # the step refused the whole batch: a bug, not a business end
            raise RuntimeError(f"{verb} refused a whole batch: {refusal.error}") from refusal
        return done.results

    @staticmethod
    def _step_request(transfer: _Transfer, *, source: bool) -> StepRequest:
        """A step of `transfer` on its source or its target."""
        request = transfer.request
        return StepRequest(
            transfer_id=request.transfer_id,
            account_id=request.source_account_id if source else request.target_account_id,
            amount=request.amount,
            currency=request.currency,
            fingerprint=transfer.fingerprint,
        )

    # progress -----------------------------------------------------------------------------

    def _start(self) -> None:
        """The search attributes a client that started the batch did not set (another SDK)."""
        updates: list[SearchAttributeUpdate[Any]] = [BATCH_ID.value_set(self._batch.batch_id)]
        total = one_currency_total(self._batch.transfers)
        if total is not None:
            updates += [AMOUNT.value_set(total[0]), CURRENCY.value_set(total[1])]
        at_start = workflow.info().typed_search_attributes
        updates = [update for update in updates if at_start.get(update.key) != update.value]
        if updates:
            workflow.upsert_search_attributes(updates)
        self._show()

    def _enter(
        self,
        phase: TransferStep,
        transfers: Sequence[_Transfer],
        status: TransferStatus | None = None,
    ) -> None:
        """The batch's phase, and each transfer's step (and status) within it."""
        self._phase = phase
        for transfer in transfers:
            transfer.advance(status or transfer.status, phase)
        self._show()

    def _counts(self) -> dict[str, int]:
        return count_statuses([transfer.status for transfer in self._transfers])

    def _show(self) -> None:
        """The Web UI's current details: the batch's phase and its counts so far."""
        line = summary_line(self._batch.transfers, self._counts())
        workflow.set_current_details(f"**{self._phase}**: {line}")


SETTLED_ELSEWHERE = "settled by hand, as another run of this request recorded on the source"


def _settled_by_hand_elsewhere(transfer: _Transfer) -> bool:
    """A refund marker beside the transfer's own debit: no refund of the ledger wrote it (one
    with no debit to pay back writes a marker, and then no debit can land), so an operator's
    resolve of another run of the request did (a resubmitted batch, a single run). Since
    BATCH_OPERATOR_DECISIONS, reported as that resolve; before it, as FAILED."""
    debited = any(e.kind == "debit" and not e.marker for e in transfer.entries)
    return debited and batch_takes_decisions()


def _show_stuck(stuck: bool, shown: bool) -> bool:
    """`RefundStuck` while some refund waits: upserted when that changes."""
    if stuck != shown:
        workflow.upsert_search_attributes(
            [REFUND_IS_STUCK.value_set(True) if stuck else REFUND_IS_STUCK.value_unset()]
        )
    return stuck


async def _batched(
    step: Callable[..., Awaitable[R]],
    argument: object,
    summary: str,
    cancellation: workflow.ActivityCancellationType,
    *,
    durable: bool = False,
) -> R:
    """One batched ledger activity: a shard step's options, with a batch's time per attempt."""
    return await run_step(
        step,
        argument,
        summary=summary,
        cancellation=cancellation,
        durable=durable,
        start_to_close=policies.BATCH_STEP_START_TO_CLOSE,
    )
