"""Typed SQLAlchemy tables: the same set lives in every shard."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Re-exported: the enum columns' values have their own module (no SQLAlchemy to import them).
from shards.enums import AccountStatus as AccountStatus
from shards.enums import EntryKind as EntryKind
from shards.enums import HoldStatus as HoldStatus

MinorUnits = Annotated[int, mapped_column(BigInteger, nullable=False)]
DbTimestamp = Annotated[
    datetime, mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
]
Identifier = Annotated[str, mapped_column(Text, nullable=False)]

ID_CHECK = "~ '^[A-Za-z0-9_.:-]{1,64}$'"


def _one_of(column: str, values: type[enum.StrEnum]) -> str:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


class Base(DeclarativeBase):
    """The declarative base: constraint names follow one convention, so migrations can name them."""

    metadata = MetaData(
        naming_convention={
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s",
            "pk": "pk_%(table_name)s",
            "ix": "ix_%(table_name)s_%(column_0_name)s",
        }
    )


class Account(Base):
    """One account; `version` grows by one with every change to the row."""

    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(Text, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    balance: Mapped[MinorUnits] = mapped_column(server_default=text("0"))
    # Sum of the holds whose status is still 'active', lapsed or not: available funds subtract
    # only the unexpired ones, and a lapsed hold is folded out of `held` by the next write.
    held: Mapped[MinorUnits] = mapped_column(server_default=text("0"))
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=AccountStatus.OPEN)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("1"))
    created_at: Mapped[DbTimestamp]
    updated_at: Mapped[DbTimestamp]

    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("held >= 0 AND held <= balance", name="held_within_balance"),
        CheckConstraint(f"account_id {ID_CHECK}", name="account_id_format"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        CheckConstraint(_one_of("status", AccountStatus), name="status_known"),
    )


class Entry(Base):
    """Append-only record of one applied step; (transfer_id, kind) makes steps idempotent.

    A `marker` entry records a compensation for a step that never happened here: it moves no
    money and exists so that the late original step is refused. No foreign key to accounts: a
    marker may name an account not opened yet (migration 0006, shards.engine.openings).
    """

    __tablename__ = "entries"

    entry_id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    transfer_id: Mapped[Identifier]
    kind: Mapped[Identifier]
    account_id: Mapped[Identifier]
    amount: Mapped[MinorUnits]
    marker: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    # NULL only on a marker written while its account did not exist (migration 0006)
    balance_after: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # A digest of the whole request the entry belongs to (see workflows.models): a step of the
    # same transfer id with another digest is refused. NULL on entries older than migration 0002.
    fingerprint: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[DbTimestamp]

    __table_args__ = (
        UniqueConstraint("transfer_id", "kind"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"transfer_id {ID_CHECK}", name="transfer_id_format"),
        CheckConstraint(f"account_id {ID_CHECK}", name="account_id_format"),
        CheckConstraint("balance_after IS NOT NULL OR marker", name="balance_after_known"),
        CheckConstraint(_one_of("kind", EntryKind), name="kind_known"),
        # a statement reads an account's entries in id order (see shards.statements)
        Index("ix_entries_account_id_entry_id", "account_id", "entry_id"),
    )


class Hold(Base):
    """Funds reserved for one transfer until `expires_at`, judged by this shard's clock."""

    __tablename__ = "holds"

    transfer_id: Mapped[str] = mapped_column(Text, primary_key=True)
    account_id: Mapped[str] = mapped_column(Text, ForeignKey("accounts.account_id"), nullable=False)
    amount: Mapped[MinorUnits]
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=HoldStatus.ACTIVE)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("1"))
    created_at: Mapped[DbTimestamp]
    updated_at: Mapped[DbTimestamp]

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(_one_of("status", HoldStatus), name="status_known"),
        Index(
            "ix_holds_active_account_id",
            "account_id",
            "expires_at",
            postgresql_where=text("status = 'active'"),
        ),
    )


class TransferClaim(Base):
    """The first request that used a transfer id, on the id's own shard: the id's one owner.

    Entries sit on the accounts' shards, so two requests of one id with no account in common
    would never meet there; they meet here.
    """

    __tablename__ = "transfer_claims"

    transfer_id: Mapped[str] = mapped_column(Text, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text, nullable=False)
    # The error of an ending with nothing moved that no entry records: its source had no account
    # to hold the refund marker (see shards.claims.end_claims). NULL otherwise, and before 0005.
    ended_code: Mapped[str | None] = mapped_column(Text, nullable=True)
    ended_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[DbTimestamp]

    __table_args__ = (CheckConstraint(f"transfer_id {ID_CHECK}", name="transfer_id_format"),)


# Core tables for statements run on plain connections (no ORM session on the hot path).
accounts = cast(Table, Account.__table__)
entries = cast(Table, Entry.__table__)
holds = cast(Table, Hold.__table__)
transfer_claims = cast(Table, TransferClaim.__table__)
