"""Frozen pydantic models exchanged by clients, workflows and activities (the wire contract).

Every model refuses unknown fields. Amounts are integer minor units (JSON numbers).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from shards.errors import InvalidInput
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


class TransferStatus(enum.StrEnum):
    """A transfer's state, also its `TransferStatus` search attribute."""

    RUNNING = "RUNNING"  # started, nothing applied yet
    DEBITED = "DEBITED"  # source debited, credit not yet applied
    COMPENSATING = "COMPENSATING"  # credit refused, refund in progress
    COMPLETED = "COMPLETED"  # final: debited and credited
    FAILED = "FAILED"  # final: refused before any money moved
    COMPENSATED = "COMPENSATED"  # final: debited, credit refused, refunded
    HELD = "HELD"  # pending transfer: funds reserved, waiting for post or void
    VOIDED = "VOIDED"  # final: hold released by a void
    EXPIRED = "EXPIRED"  # final: hold lapsed before a post

    @property
    def final(self) -> bool:
        """Whether the transfer has ended: no step will change it any more."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        TransferStatus.COMPLETED,
        TransferStatus.FAILED,
        TransferStatus.COMPENSATED,
        TransferStatus.VOIDED,
        TransferStatus.EXPIRED,
    }
)


class TransferStep(enum.StrEnum):
    """Where a transfer is within its status: the `step` of its outcome, its status query and
    `--json`, and of the Web UI's current details. The values are part of that contract."""

    STARTED = "started"  # the run began; nothing recorded yet
    # TransferWorkflow
    ROUTING = "routing"  # claiming the transfer id and routing both sides
    DEBITING = "debiting"
    DEBIT_REFUSED = "debit-refused"  # FAILED: the source refused the debit
    TRANSFERRING = "transferring"  # both sides on one shard, in one transaction
    # PendingTransferWorkflow
    HOLDING = "holding"  # claiming, routing, placing the hold
    HOLD_REFUSED = "hold-refused"  # FAILED: the source refused the hold
    HELD = "held"  # HELD: waiting for a post, a void or the hold's expiry
    CAPTURING = "capturing"  # a post takes the held amount as the debit
    CAPTURE_REFUSED = "capture-refused"  # FAILED: the hold was no longer there to capture
    RELEASING = "releasing"  # a void, an expiry or a cancellation gives the hold back
    VOIDED = "voided"  # VOIDED: released by a void
    EXPIRED = "expired"  # EXPIRED: lapsed before a post
    # both
    CREDITING = "crediting"
    COMPLETED = "completed"  # COMPLETED: debited and credited
    REFUSED = "refused"  # FAILED: refused before any money moved (claim, route, same shard)
    CANCELLED = "cancelled"  # FAILED or VOIDED: cancelled before the money moved
    SETTLING_CREDIT = "settling-credit"  # did the credit land? fenced on the target's shard
    REFUNDING = "refunding"  # COMPENSATING: giving the debit back to the source
    REFUND_STUCK = "refund-stuck"  # COMPENSATING: the refund was refused; waits for an operator
    RESOLVING = "resolving"  # an operator settled the stuck refund by hand; recording it
    RESOLVED_BY_OPERATOR = "resolved-by-operator"  # COMPENSATED: settled by hand
    REFUNDED = "refunded"  # COMPENSATED: debited, credit refused, refunded


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


class PendingTransferRequest(TransferRequest):
    """Input of `PendingTransferWorkflow`, in the same id space (`transfer-{transfer_id}`): hold the
    amount on the source for `timeout_s` seconds, until a post or a void decides."""

    KIND: ClassVar[str] = "pending"

    timeout_s: HoldSeconds


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

    @model_validator(mode="before")
    @classmethod
    def _ignore_recorded_balance(cls, data: Any) -> Any:
        """Runs recorded before balances left the history carry a real `balance_after`: dropped."""
        if isinstance(data, dict) and "balance_after" in data:
            return {key: value for key, value in data.items() if key != "balance_after"}
        return data


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


MAX_NOTE_CHARS = 500  # an operator's note ends up in the transfer's error and its history


def check_note(note: str) -> str:
    """An operator's note on a refund settled by hand: says how, in at most MAX_NOTE_CHARS."""
    if not note.strip():
        raise InvalidInput("the note must say how the refund was settled; it is empty")
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidInput(f"the note has {len(note)} characters; at most {MAX_NOTE_CHARS}")
    return note


class TransferError(Model):
    """Why a transfer failed or was compensated: `type` is the business error's name."""

    type: str
    message: str


class TransferOutcome(Model):
    """Result of a transfer workflow, and the answer of its `status` query."""

    transfer_id: str
    status: TransferStatus
    step: str  # a TransferStep's value; a plain string so any recorded step still decodes
    entries: tuple[AppliedEntry, ...] = ()
    error: TransferError | None = None
    expires_at: datetime | None = None  # a pending transfer's hold lapses then (shard clock)
