"""Request fingerprints on entries, and one claim per transfer id.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID_CHECK = "~ '^[A-Za-z0-9_.:-]{1,64}$'"


def upgrade() -> None:
    # Entries written before this revision have none: their steps compare account and amount only.
    op.add_column("entries", sa.Column("fingerprint", sa.Text(), nullable=True))
    op.create_table(
        "transfer_claims",
        sa.Column("transfer_id", sa.Text(), primary_key=True),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(f"transfer_id {ID_CHECK}", name="transfer_id_format"),
    )


def downgrade() -> None:
    op.drop_table("transfer_claims")
    op.drop_column("entries", "fingerprint")
