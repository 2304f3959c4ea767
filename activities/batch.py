"""The batched ledger activities of `TransferBatchWorkflow`: one step for many transfers, one
short transaction per shard (the Ledger's `*_batch` methods).

Each transfer's result is what its single step gives (`activities.ledger`): its entry, or its
business refusal, returned in order instead of raised, so that one refused transfer never refuses
the rest. Infrastructure errors fail the whole step, translated as for a single step, and the
step is retried: the ledger replays what committed, by (transfer_id, kind).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from temporalio import activity

from activities.batch_models import (
    BatchClaimResults,
    BatchClaims,
    BatchEndingResults,
    BatchEndings,
    BatchStepResults,
    BatchSteps,
    StepOutcome,
)
from activities.ledger import (
    LedgerActivities,
    applied_entry,
    ending_of,
    how_applied,
    log_applied,
    refusal_of,
    refusals_are_final,
)
from shards.errors import BusinessError
from shards.records import BatchStep, StepResult

LedgerBatchStep = Callable[[Sequence[BatchStep]], Awaitable[list[StepResult | BusinessError]]]


class BatchActivities(LedgerActivities):
    """The batched steps over one `Ledger`; `CRASH_AFTER_COMMIT` names them `debit_batch`, ..."""

    @activity.defn
    async def claim_batch(self, batch: BatchClaims) -> BatchClaimResults:
        """Own each transfer id with its request's digest; a refusal where another request
        owns it (IdempotencyConflict)."""
        claims = [(claim.transfer_id, claim.fingerprint) for claim in batch.claims]
        with refusals_are_final(_first(claims), "claim_batch"):
            found = await self.ledger.claim_batch(claims)
        self._committed("claim_batch")
        return BatchClaimResults(
            refusals=tuple(
                None if error is None else refusal_of(transfer_id, "claim", error)
                for (transfer_id, _), error in zip(claims, found, strict=True)
            )
        )

    @activity.defn
    async def end_claim_batch(self, batch: BatchEndings) -> BatchEndingResults:
        """`end_claim` for many transfers: whether each claim now records its ending."""
        endings = [ending_of(ending) for ending in batch.endings]
        first = _first([(ending.transfer_id, "") for ending in endings])
        with refusals_are_final(first, "end_claim_batch"):
            recorded = await self.ledger.end_claims(endings)
        self._committed("end_claim_batch")
        activity.logger.info("end_claim_batch of %s: %d recorded", first, sum(recorded))
        return BatchEndingResults(recorded=tuple(recorded))

    @activity.defn
    async def debit_batch(self, batch: BatchSteps) -> BatchStepResults:
        """Take each amount from its source."""
        return await self._apply_batch("debit_batch", batch, self.ledger.debit_batch)

    @activity.defn
    async def credit_batch(self, batch: BatchSteps) -> BatchStepResults:
        """Give each amount to its target."""
        return await self._apply_batch("credit_batch", batch, self.ledger.credit_batch)

    @activity.defn
    async def fence_credit_batch(self, batch: BatchSteps) -> BatchStepResults:
        """Each credit if it landed; else a marker that refuses it from now on."""
        return await self._apply_batch("fence_credit_batch", batch, self.ledger.fence_credit_batch)

    @activity.defn
    async def refund_batch(self, batch: BatchSteps) -> BatchStepResults:
        """Give each debit back to its source; a marker where no debit applied."""
        return await self._apply_batch("refund_batch", batch, self.ledger.refund_batch)

    async def _apply_batch(
        self, kind: str, batch: BatchSteps, step: LedgerBatchStep
    ) -> BatchStepResults:
        steps = [
            BatchStep(
                transfer_id=request.transfer_id,
                account_id=request.account_id,
                amount=request.amount,
                currency=request.currency,
                fingerprint=request.fingerprint or "",
            )
            for request in batch.steps
        ]
        first = _first([(s.transfer_id, "") for s in steps])
        with refusals_are_final(first, kind):
            results = await step(steps)
        self._committed(kind)
        # A line per transfer at DEBUG only: at INFO, a line for each of thousands of transfers a
        # second cost the worker a sixth of its CPU (BENCHMARKS.md, "Batches"); asked once a step.
        per_transfer = activity.logger.isEnabledFor(logging.DEBUG)
        outcomes = tuple(
            _outcome(kind, request, result, per_transfer=per_transfer)
            for request, result in zip(steps, results, strict=True)
        )
        _log_counts(kind, first, results)
        return BatchStepResults(results=outcomes)


def _outcome(
    kind: str, step: BatchStep, result: StepResult | BusinessError, *, per_transfer: bool
) -> StepOutcome:
    if isinstance(result, BusinessError):
        return refusal_of(step.transfer_id, kind, result)
    if per_transfer:
        log_applied(result, logging.DEBUG)
    return applied_entry(result)


def _log_counts(kind: str, first: str, results: Sequence[StepResult | BusinessError]) -> None:
    """One INFO line a batched step: how many of its transfers ended each way."""
    counts = Counter(
        "refused" if isinstance(result, BusinessError) else how_applied(result)
        for result in results
    )
    said = ", ".join(f"{n} {how}" for how, n in sorted(counts.items()))
    activity.logger.info("%s of %s: %s", kind, first, said)


def _first(claims: Sequence[tuple[str, str]]) -> str:
    """The batch as its log lines name it: its first transfer id, and how many follow."""
    if not claims:
        return "(empty batch)"
    return f"{claims[0][0]} (+{len(claims) - 1})"
