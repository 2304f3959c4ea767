"""Statements: an account's entries newest first, read from an index in that order.

The index on (account_id, entry_id) replaces the one on account_id alone: it serves every lookup
by account as well, and a statement page reads its rows in order instead of sorting all of the
account's entries. CREATE INDEX (not CONCURRENTLY: migrations run in one transaction under an
advisory lock) blocks writes to `entries` while it builds.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_entries_account_id_entry_id", "entries", ["account_id", "entry_id"])
    op.drop_index("ix_entries_account_id", table_name="entries")


def downgrade() -> None:
    op.create_index("ix_entries_account_id", "entries", ["account_id"])
    op.drop_index("ix_entries_account_id_entry_id", table_name="entries")
