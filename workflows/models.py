"""Frozen pydantic models exchanged by clients and workflows (the wire contract).

The activities' inputs and outputs are drawn one floor below, in `activities.models`; so is
`TransferRequest` (the `route` activity takes it) and `TransferError` (a batched step's refusal),
re-exported here with `AppliedEntry` for clients.
Every model refuses unknown fields. Amounts are integer minor units (JSON numbers).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import ClassVar

from activities.models import AppliedEntry, HoldSeconds, Model, TransferError, TransferRequest
from shards.errors import InvalidInput

# The client's API: a transfer's request, and the entries of its outcome.
__all__ = [
    "FINAL_STATUSES",
    "MAX_NOTE_CHARS",
    "AppliedEntry",
    "PendingTransferRequest",
    "TransferError",
    "TransferOutcome",
    "TransferRequest",
    "TransferStatus",
    "TransferStep",
    "check_note",
]


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


class PendingTransferRequest(TransferRequest):
    """Input of `PendingTransferWorkflow`, in the same id space (`transfer-{transfer_id}`): hold the
    amount on the source for `timeout_s` seconds, until a post or a void decides."""

    KIND: ClassVar[str] = "pending"

    timeout_s: HoldSeconds


MAX_NOTE_CHARS = 500  # an operator's note ends up in the transfer's error and its history


def check_note(note: str) -> str:
    """An operator's note on a refund settled by hand: says how, in at most MAX_NOTE_CHARS."""
    if not note.strip():
        raise InvalidInput("the note must say how the refund was settled; it is empty")
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidInput(f"the note has {len(note)} characters; at most {MAX_NOTE_CHARS}")
    return note


class TransferOutcome(Model):
    """Result of a transfer workflow, and the answer of its `status` query."""

    transfer_id: str
    status: TransferStatus
    step: str  # a TransferStep's value; a plain string so any recorded step still decodes
    entries: tuple[AppliedEntry, ...] = ()
    error: TransferError | None = None
    expires_at: datetime | None = None  # a pending transfer's hold lapses then (shard clock)
