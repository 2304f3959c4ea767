"""Markers on accounts not opened yet, ordered against the accounts' opening.

A compensation on an account that does not exist (a credit fenced on an unknown target, a refund
on an unknown source) used to write nothing: there was no account row to hang its marker entry on.
A run of the same request that got there after the account was opened then found nothing to
refuse it, and its credit landed beside the first run's refund. The marker is now written without
the row, so the foreign key from entries to accounts goes (a marker moves no money; the audit
reports an entry that moves money on an account that does not exist).

Nothing else on the shard orders such a marker against the account's opening, so both take the
account's opening lock (a transaction-level advisory lock keyed on the account id):
`lock_account_openings(ids)` takes them in key order (no deadlock between two takers), and a
trigger takes it on every insert into accounts, whoever inserts. A step that writes such a marker
reads the account under the lock: the account cannot appear until the marker is committed, and a
step that sees the account sees the marker.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

WORKER = "ledger_worker"


def upgrade() -> None:
    op.execute(
        "DO $$ DECLARE fk name; BEGIN "
        "SELECT conname INTO fk FROM pg_constraint "
        "WHERE conrelid = 'entries'::regclass AND confrelid = 'accounts'::regclass; "
        "IF fk IS NOT NULL THEN EXECUTE format('ALTER TABLE entries DROP CONSTRAINT %I', fk); "
        "END IF; END $$"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION lock_account_openings(account_ids text[]) RETURNS void "
        "LANGUAGE plpgsql SET search_path = pg_catalog AS $$ "
        "DECLARE key int4; BEGIN "
        "FOR key IN SELECT DISTINCT hashtext(id) FROM unnest(account_ids) AS id ORDER BY 1 LOOP "
        "PERFORM pg_advisory_xact_lock(1634038121, key); "  # any fixed int4: the ledger's own
        "END LOOP; END $$"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION account_opening() RETURNS trigger "
        "LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$ BEGIN "
        "PERFORM lock_account_openings(ARRAY[NEW.account_id]); RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER account_opening BEFORE INSERT ON accounts "
        "FOR EACH ROW EXECUTE FUNCTION account_opening()"
    )
    op.execute(
        f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{WORKER}') THEN "
        f"GRANT EXECUTE ON FUNCTION lock_account_openings(text[]) TO {WORKER}; "
        "END IF; END $$"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS account_opening ON accounts")
    op.execute("DROP FUNCTION IF EXISTS account_opening()")
    op.execute("DROP FUNCTION IF EXISTS lock_account_openings(text[])")
    # NOT VALID: markers written on accounts that were never opened stay
    op.execute(
        "ALTER TABLE entries ADD CONSTRAINT entries_account_id_fkey FOREIGN KEY (account_id) "
        "REFERENCES accounts (account_id) NOT VALID"
    )
