"""Wire models of the batched ledger activities (`activities.batch`): one request or refusal per
transfer, in the order the workflow asked. A batch travels whole through Temporal, each step's
result too: `workflows.batch_models.MAX_BATCH_SIZE` bounds them below the 2 MB payload limit.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from activities.models import (
    AppliedEntry,
    ClaimEnding,
    Identifier,
    Model,
    StepRequest,
    TransferError,
)


class BatchClaim(Model):
    """One transfer of a `claim_batch`: own its id with the request's digest."""

    transfer_id: Identifier
    fingerprint: str


# What a batched step gives back for each transfer, in the order asked: the entry, or the refusal.
# Tried in this order (an entry has fields a refusal lacks, extra fields are refused): pydantic's
# "smart" union validated each result against both: half the time of decoding a batch's results.
StepOutcome = Annotated[AppliedEntry | TransferError, Field(union_mode="left_to_right")]


class BatchSteps(Model):
    """Input of a batched ledger step: one step per transfer, each on one account."""

    steps: tuple[StepRequest, ...]


class BatchStepResults(Model):
    """Output of a batched ledger step, in the order of its `BatchSteps`."""

    results: tuple[StepOutcome, ...]


class BatchClaims(Model):
    """Input of `claim_batch`."""

    claims: tuple[BatchClaim, ...]


class BatchClaimResults(Model):
    """Output of `claim_batch`, in order: None where the claim is this request's, else the
    refusal (IdempotencyConflict: another request owns the id)."""

    refusals: tuple[TransferError | None, ...]


class BatchEndings(Model):
    """Input of `end_claim_batch`: `end_claim` for many transfers."""

    endings: tuple[ClaimEnding, ...]


class BatchEndingResults(Model):
    """Output of `end_claim_batch`, in order: whether each claim now records its ending (False:
    the source's entries record it already)."""

    recorded: tuple[bool, ...]
