"""Markers on accounts not opened yet, ordered against the accounts' opening.

A compensation on an account that does not exist (a credit fenced on an unknown target, a refund
on an unknown source) used to write nothing: there was no account row to hang its marker entry on.
A run of the same request that got there after the account was opened then found nothing to
refuse it, and its credit landed beside the first run's refund. The marker is now written without
the row, so the foreign key from entries to accounts goes (a marker moves no money; the audit
reports an entry that moves money on an account that does not exist; the id's format is checked
instead). Such a marker has no balance after it: `balance_after` is NULL there, and only there,
which also tells a claim's ending that the marker keeps no error (shards.claims).

Nothing else on the shard orders such a marker against the account's opening, so both take the
account's opening lock (a transaction-level advisory lock keyed on the account id):
`lock_account_openings(ids)` takes them in key order (no deadlock between two takers), and a
statement trigger takes them for the rows every insert into accounts added, whoever inserts, before
it commits. A step that writes such a marker reads the account under the lock: the account cannot
appear until the marker is committed, and a step that sees the account sees the marker. (A trigger
does not fire under `session_replication_role = replica`, nor once disabled: open accounts with
both left as they are; nor on an UPDATE of an account's id, which the worker role may no longer
make: it updates the balance columns only.)

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

WORKER = "ledger_worker"
ID_CHECK = "~ '^[A-Za-z0-9_.:-]{1,64}$'"  # as 0001's


def upgrade() -> None:
    op.execute(
        "DO $$ DECLARE fk name; BEGIN "
        "SELECT conname INTO fk FROM pg_constraint "
        "WHERE conrelid = 'entries'::regclass AND confrelid = 'accounts'::regclass; "
        "IF fk IS NOT NULL THEN EXECUTE format('ALTER TABLE entries DROP CONSTRAINT %I', fk); "
        "END IF; END $$"
    )
    op.execute("ALTER TABLE entries ALTER COLUMN balance_after DROP NOT NULL")
    # NOT VALID: the rows already there were written under the foreign key and NOT NULL
    op.execute(
        "ALTER TABLE entries ADD CONSTRAINT ck_entries_balance_after_known "
        "CHECK (balance_after IS NOT NULL OR marker) NOT VALID"
    )
    op.execute(
        "ALTER TABLE entries ADD CONSTRAINT ck_entries_account_id_format "
        f"CHECK (account_id {ID_CHECK}) NOT VALID"
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
        "PERFORM lock_account_openings(ARRAY(SELECT account_id FROM opened)); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER account_opening AFTER INSERT ON accounts REFERENCING NEW TABLE AS opened "
        "FOR EACH STATEMENT EXECUTE FUNCTION account_opening()"
    )
    op.execute(
        f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{WORKER}') THEN "  # noqa: S608 (constants)
        f"GRANT EXECUTE ON FUNCTION lock_account_openings(text[]) TO {WORKER}; "
        # an id renamed in place would appear without its insert's opening lock
        f"REVOKE UPDATE ON accounts FROM {WORKER}; "
        f"GRANT UPDATE (balance, held, status, version, updated_at) ON accounts TO {WORKER}; "
        "END IF; END $$"
    )


def downgrade() -> None:
    op.execute(
        f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{WORKER}') THEN "
        f"GRANT UPDATE ON accounts TO {WORKER}; END IF; END $$"
    )
    op.execute("DROP TRIGGER IF EXISTS account_opening ON accounts")
    op.execute("DROP FUNCTION IF EXISTS account_opening()")
    op.execute("DROP FUNCTION IF EXISTS lock_account_openings(text[])")
    op.execute("ALTER TABLE entries DROP CONSTRAINT IF EXISTS ck_entries_account_id_format")
    op.execute("ALTER TABLE entries DROP CONSTRAINT IF EXISTS ck_entries_balance_after_known")
    op.execute("UPDATE entries SET balance_after = 0 WHERE balance_after IS NULL")
    op.execute("ALTER TABLE entries ALTER COLUMN balance_after SET NOT NULL")
    # NOT VALID: markers written on accounts that were never opened stay
    op.execute(
        "ALTER TABLE entries ADD CONSTRAINT entries_account_id_fkey FOREIGN KEY (account_id) "
        "REFERENCES accounts (account_id) NOT VALID"
    )
