"""The worker role's table privileges, table by table (deploy/postgres/init-roles.sh makes the
role and gives it SELECT and INSERT on every table the owner creates).

UPDATE only where the steps update rows or lock them FOR UPDATE: `accounts` (balances, status)
and `holds` (capture, release). `entries` and `transfer_claims` are insert-only, and
`alembic_version` is the migrations' alone: the worker may read it, never write it. A shard
without the role (the dev stack, the tests' servers) is left as it is. A later migration that
creates a table the steps update grants UPDATE on it the same way.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WORKER = "ledger_worker"


def _if_the_worker_exists(statements: str) -> None:
    op.execute(
        f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{WORKER}') THEN "
        f"{statements} END IF; END $$"
    )


def upgrade() -> None:
    _if_the_worker_exists(
        f"GRANT UPDATE ON accounts, holds TO {WORKER}; "
        f"REVOKE UPDATE, DELETE, TRUNCATE ON entries, transfer_claims FROM {WORKER}; "
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {WORKER};"
    )


def downgrade() -> None:
    """Nothing to undo: the release before this one needs the same privileges."""
