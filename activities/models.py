"""Frozen pydantic models exchanged by the ledger activities and the workflows that call them.

They go through recorded histories: their field names, and the activities' type names, are the
wire contract (class names are not). Every model refuses unknown fields; amounts are integer minor
units (JSON numbers). `workflows.models` builds the client's models on these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from shards.fingerprints import fingerprint_of
from shards.validation import MAX_AMOUNT, MAX_HOLD_TTL_S

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
MinorUnits = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT)]
# How long a hold lasts, in seconds by its shard's clock: at most MAX_HOLD_TTL_S (30 days).
HoldSeconds = Annotated[float, Field(gt=0, le=MAX_HOLD_TTL_S, allow_inf_nan=False)]


class Model(BaseModel):
    """The base of the wire models: frozen, and unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TransferRequest(Model):
    """Input of `TransferWorkflow` (workflow id `transfer-{transfer_id}`)."""

    KIND: ClassVar[str] = "transfer"

    transfer_id: Identifier
    source_account_id: Identifier
    target_account_id: Identifier
    amount: MinorUnits
    currency: Currency
    memo: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _distinct_accounts(self) -> TransferRequest:
        if self.source_account_id == self.target_account_id:
            raise ValueError("source and target must be different accounts")
        return self

    def fingerprint(self) -> str:
        """The digest every entry of this transfer carries: a request of the same transfer id
        with another kind, source, target, amount or currency is refused by the shards (the memo
        and a pending transfer's timeout move no money and are left out)."""
        return fingerprint_of(
            self.KIND,
            self.source_account_id,
            self.target_account_id,
            self.amount,
            self.currency,
        )


class StepRequest(Model):
    """Input of one ledger activity: a step of a transfer on one account."""

    transfer_id: Identifier
    account_id: Identifier
    amount: MinorUnits
    currency: Currency
    fingerprint: str | None = None  # the request's digest; None in runs recorded before it


class WithinShardRequest(Model):
    """Input of the same-shard activity: both sides in one local transaction."""

    transfer_id: Identifier
    source_account_id: Identifier
    target_account_id: Identifier
    amount: MinorUnits
    currency: Currency
    fingerprint: str | None = None


class HoldRequest(StepRequest):
    """Input of the `hold` activity: reserve the amount for `ttl_s` seconds by the shard's clock."""

    ttl_s: HoldSeconds


class HoldApplied(Model):
    """Output of `hold`: the reservation, and when its shard's clock lets it lapse."""

    account_id: str
    amount: int
    expires_at: datetime
    replayed: bool = False


class PostRequest(Model):
    """Input of `capture`: take `amount` of the transfer's hold (None: all of it) as the debit."""

    transfer_id: Identifier
    account_id: Identifier
    amount: MinorUnits | None = None
    fingerprint: str | None = None


class AppliedEntry(Model):
    """An entry a step applied (or found applied: `replayed`). No balance: this goes into the
    history and the transfer's result, which whoever submits the transfer reads; an account's
    balance is its owner's to see (`transfers accounts show`)."""

    kind: str
    account_id: str
    amount: int
    replayed: bool = False
    marker: bool = False
    # Always 0, never a balance. Workers of the release before require the field: during a
    # rolling deploy they decode the results of steps new workers ran, and a result without it
    # would fail the whole transfer (a ValidationError fails the workflow) after money moved.
    # Remove it in the release after this one.
    balance_after: int = 0

    def same_entry(self, other: AppliedEntry) -> bool:
        """Whether `other` is this same entry on the shard, applied by this answer or found by
        another (`replayed`: a settle-once-more finds the marker the first settle wrote)."""
        return (self.kind, self.account_id, self.amount, self.marker) == (
            other.kind,
            other.account_id,
            other.amount,
            other.marker,
        )

    @field_validator("balance_after")
    @classmethod
    def _ignore_recorded_balance(cls, _recorded: int) -> int:
        """Runs recorded before balances left the history carry a real `balance_after`: 0. A
        field validator: a model validator copying each result's fields took 6% of the worker's
        CPU at thousands of batched transfers a second (BENCHMARKS.md, "Batches")."""
        return 0


class TransferError(Model):
    """Why a transfer failed or was compensated: `type` is the business error's name."""

    type: str
    message: str


class ClaimEnding(Model):
    """Input of `end_claim`: a transfer ending FAILED with nothing moved (its refund, or its hold's
    release, came back a marker), and its error, for its claim to keep where no entry can."""

    transfer_id: Identifier
    fingerprint: str
    source_account_id: Identifier
    error: TransferError


class ClaimRequest(Model):
    """Input of `claim`, a saga's first step: own the transfer id, and route both sides."""

    transfer_id: Identifier
    source_account_id: Identifier
    target_account_id: Identifier
    fingerprint: str


class Route(Model):
    """Output of the `route` local activity: the shard of each side, recorded in history."""

    source_shard: int
    target_shard: int

    @property
    def same_shard(self) -> bool:
        """Whether both sides live on one shard: then the transfer is one local transaction."""
        return self.source_shard == self.target_shard
