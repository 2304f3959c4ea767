"""Accounts, entries and holds.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID_CHECK = "~ '^[A-Za-z0-9_.:-]{1,64}$'"
KINDS = "'debit', 'credit', 'refund', 'hold', 'capture', 'release', 'deposit', 'withdrawal'"


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Text(), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("held", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("status", sa.Text(), nullable=False, server_default="open"),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default=sa.text("1")),
        *_timestamps(),
        sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
        sa.CheckConstraint("held >= 0 AND held <= balance", name="held_within_balance"),
        sa.CheckConstraint(f"account_id {ID_CHECK}", name="account_id_format"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        sa.CheckConstraint("status IN ('open', 'frozen', 'closed')", name="status_known"),
    )
    op.create_table(
        "entries",
        sa.Column("entry_id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("transfer_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), sa.ForeignKey("accounts.account_id"), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("marker", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("transfer_id", "kind"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint(f"transfer_id {ID_CHECK}", name="transfer_id_format"),
        sa.CheckConstraint(f"kind IN ({KINDS})", name="kind_known"),
    )
    op.create_index("ix_entries_account_id", "entries", ["account_id"])
    op.create_table(
        "holds",
        sa.Column("transfer_id", sa.Text(), primary_key=True),
        sa.Column("account_id", sa.Text(), sa.ForeignKey("accounts.account_id"), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="active"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default=sa.text("1")),
        *_timestamps(),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("status IN ('active', 'captured', 'released')", name="status_known"),
    )
    op.create_index(
        "ix_holds_active_account_id",
        "holds",
        ["account_id", "expires_at"],
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_table("holds")
    op.drop_table("entries")
    op.drop_table("accounts")
