"""A transfer's ending on its claim, where no entry can record it.

A transfer that ends FAILED leaves a refund marker on its source's shard, which refuses the debit
of any later run of it. An unknown source has no account row to hang that marker on: the claim
row of the transfer id records the ending instead (its error's code and message), and a later run
of the same request ends as the first did. Nullable columns: the release before this one reads
and writes claims as it did. The worker role may UPDATE these two columns only: a claim's owner
(`fingerprint`) stays insert-only.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WORKER = "ledger_worker"


def upgrade() -> None:
    op.add_column("transfer_claims", sa.Column("ended_code", sa.Text(), nullable=True))
    op.add_column("transfer_claims", sa.Column("ended_message", sa.Text(), nullable=True))
    op.execute(
        f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{WORKER}') THEN "
        f"GRANT UPDATE (ended_code, ended_message) ON transfer_claims TO {WORKER}; "
        "END IF; END $$"
    )


def downgrade() -> None:
    op.drop_column("transfer_claims", "ended_message")
    op.drop_column("transfer_claims", "ended_code")
