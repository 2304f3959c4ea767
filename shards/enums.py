"""The values of the shards' enum columns (shards.schema checks them in the database).

Their own module: the workflows and the CLI name them without importing SQLAlchemy.
"""

from __future__ import annotations

import enum


class AccountStatus(enum.StrEnum):
    """An account's state: only an open account takes part in a transfer."""

    OPEN = "open"
    FROZEN = "frozen"
    CLOSED = "closed"


class EntryKind(enum.StrEnum):
    """What an entry records; `kind` is also half of an entry's idempotency key."""

    DEBIT = "debit"
    CREDIT = "credit"
    REFUND = "refund"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"


class HoldStatus(enum.StrEnum):
    """A hold's state: active until captured (posted) or released (voided, expired)."""

    ACTIVE = "active"
    CAPTURED = "captured"
    RELEASED = "released"
