"""The values of the shards' enum columns (shards.schema checks them in the database).

Their own module: the workflows and the CLI name them without importing SQLAlchemy.
"""

from __future__ import annotations

import enum


class AccountStatus(enum.StrEnum):
    OPEN = "open"
    FROZEN = "frozen"
    CLOSED = "closed"


class EntryKind(enum.StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"
    REFUND = "refund"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"


class HoldStatus(enum.StrEnum):
    ACTIVE = "active"
    CAPTURED = "captured"
    RELEASED = "released"
