"""deploy/postgres/init-roles.sh, the shard containers' first-start script, run against a real
PostgreSQL (embedded) as the postgres image runs it: the owner role migrates, the worker role runs
every ledger step and can do nothing else (no DDL, no other database, no programs)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
import pytest
import yaml
from alembic.script import ScriptDirectory

from shards.audit import run_audit
from shards.engine.runner import LockStrategy
from shards.ledger import Ledger
from shards.migrate import MIGRATIONS, upgrade
from shards.records import Ending
from shards.router import ShardRouter
from shards.schema import AccountStatus
from transfers.devtools.embedded_pg import temporary_servers
from transfers.devtools.embedded_pg.server import wheel_install

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "deploy" / "postgres" / "init-roles.sh"
PSQL_DIR = wheel_install() / "bin"


@dataclass(frozen=True)
class Server:
    """One embedded PostgreSQL: its superuser DSN and the role passwords the script was given."""

    superuser_dsn: str
    passwords: dict[str, str]
    secrets: Path  # the password files, one a role

    def dsn(self, user: str, database: str) -> str:
        parts = urlsplit(self.superuser_dsn)
        password = quote(self.passwords[user])
        return f"postgresql://{user}:{password}@{parts.hostname}:{parts.port}/{database}"

    def superuser(self, database: str) -> str:
        return urlsplit(self.superuser_dsn)._replace(path=f"/{database}").geturl()


def _run_script(
    server: Server, database: str, secrets: Path | None = None, superuser_dsn: str | None = None
) -> subprocess.CompletedProcess[str]:
    secrets = secrets or server.secrets
    parts = urlsplit(superuser_dsn or server.superuser_dsn)
    environment = {
        "PATH": f"{PSQL_DIR}:/usr/bin:/bin",
        "PGHOST": parts.hostname or "",
        "PGPORT": str(parts.port),
        "PGPASSWORD": parts.password or "",
        "POSTGRES_USER": parts.username or "",
        "POSTGRES_DB": database,
        "LEDGER_OWNER_PASSWORD_FILE": str(secrets / "ledger_owner_password"),
        "LEDGER_WORKER_PASSWORD_FILE": str(secrets / "ledger_worker_password"),
    }
    return subprocess.run(
        ["sh", str(SCRIPT)], env=environment, capture_output=True, text=True, check=False
    )


def _create_database(server: Server, name: str) -> None:
    with psycopg.connect(server.superuser_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose `ledger` database went through the script (twice: every first start of a
    shard runs it, and an operator may run it again) and was then migrated as ledger_owner."""
    secrets = tmp_path_factory.mktemp("secrets")
    passwords = {"ledger_owner": "owner-pw-1f2e", "ledger_worker": "worker-pw-3d4c"}
    for user, password in passwords.items():
        (secrets / f"{user}_password").write_text(password + "\n")  # as `echo` writes them
    with temporary_servers(1, durable=False, prefix="transfers-test-roles-") as [dsn]:
        found = Server(dsn, passwords, secrets)
        _create_database(found, "ledger")
        with psycopg.connect(found.superuser("postgres"), autocommit=True) as connection:
            connection.execute("CREATE TABLE payroll (salary bigint)")
        for _ in range(2):
            result = _run_script(found, "ledger")
            assert result.returncode == 0, result.stderr
        upgrade(found.dsn("ledger_owner", "ledger"))
        yield found


@pytest.fixture(scope="module")
async def worker_router(server: Server) -> AsyncIterator[ShardRouter]:
    router = ShardRouter.from_dsns([server.dsn("ledger_worker", "ledger")])
    yield router
    await router.dispose()


async def _every_step(ledger: Ledger, new_id: Callable[[str], str]) -> None:
    """Each public Ledger operation once, as a worker or the CLI runs it."""
    source, target, held = new_id("acc"), new_id("acc"), new_id("acc")
    for account in (source, target, held):
        await ledger.open_account(account, "EUR")
    await ledger.deposit(new_id("dep"), source, 10_000, "EUR")
    await ledger.deposit(new_id("dep"), held, 5_000, "EUR")
    await ledger.withdraw(new_id("wd"), source, 100, "EUR")

    transfer = new_id("tr")
    await ledger.claim(transfer, "fingerprint")
    await ledger.debit(transfer, source, 1_000, "EUR")
    await ledger.credit(transfer, target, 1_000, "EUR")
    failed = new_id("tr")
    await ledger.debit(failed, source, 200, "EUR")
    await ledger.fence_credit(failed, target, 200, "EUR")
    await ledger.refund(failed, source, 200, "EUR")
    unknown = new_id("tr")  # its source never existed: the claim records its end (0005's grant)
    await ledger.claim(unknown, "fingerprint")
    ending = Ending(unknown, "fingerprint", new_id("acc"), "AccountNotFound", "no such account")
    assert await ledger.end_claims([ending]) == [True]
    # a credit fenced on an account not opened yet: its marker, under its opening lock (0006)
    assert (await ledger.fence_credit(new_id("tr"), new_id("acc"), 200, "EUR")).marker
    by_hand = new_id("tr")
    await ledger.debit(by_hand, source, 300, "EUR")
    await ledger.settled_by_hand(by_hand, source, 300, "EUR")
    await ledger.transfer_within_shard(new_id("tr"), source, target, 50, "EUR")

    captured, released = new_id("tr"), new_id("tr")
    await ledger.hold(captured, held, 1_000, ttl_s=60, currency="EUR")
    await ledger.post(captured, held, 600)
    await ledger.hold(released, held, 500, ttl_s=60, currency="EUR")
    await ledger.void(released, held, 500)
    assert await ledger.get_hold(captured, held) is not None

    await ledger.set_status(target, AccountStatus.FROZEN)
    assert (await ledger.get_account(target)).status == AccountStatus.FROZEN
    assert (await ledger.get_account(source)).balance == 10_000 - 100 - 1_000 - 300 - 50
    assert len((await ledger.statement(source)).entries) == 8  # the hand-settled marker too
    assert {view.account_id for view in await ledger.list_accounts()} >= {source, target, held}
    assert not (await run_audit(ledger.router, quiet=True)).contradictions


@pytest.mark.parametrize("strategy", list(LockStrategy))
async def test_the_worker_role_runs_every_ledger_step(
    worker_router: ShardRouter, strategy: LockStrategy, new_id: Callable[[str], str]
) -> None:
    await _every_step(Ledger(worker_router, strategy), new_id)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE stash (note text)",
        "CREATE TEMPORARY TABLE stash (note text)",
        "ALTER TABLE accounts ADD COLUMN note text",
        "DROP TABLE entries",
        "DELETE FROM entries",
        "TRUNCATE holds",
        "CREATE SCHEMA stash",
        # insert-only: the steps add entries and claims, never change one
        "UPDATE entries SET amount = amount + 1",
        "UPDATE transfer_claims SET fingerprint = 'forged'",
        # an account appears by its insert only, which takes its opening lock (0006)
        "UPDATE accounts SET account_id = account_id || 'x'",
        # the schema version is the migrations' (0004)
        "INSERT INTO alembic_version VALUES ('9999')",
        "UPDATE alembic_version SET version_num = '9999'",
        "DELETE FROM alembic_version",
    ],
)
def test_the_worker_role_cannot_change_the_schema_nor_rewrite_history(
    server: Server, statement: str
) -> None:
    with (
        psycopg.connect(server.dsn("ledger_worker", "ledger")) as connection,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        connection.execute(statement)


def test_the_worker_role_reads_the_schema_version(server: Server) -> None:
    with psycopg.connect(server.dsn("ledger_worker", "ledger")) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (
            ScriptDirectory(str(MIGRATIONS)).get_current_head(),
        )


def test_a_later_migrations_table_and_function_get_the_default_privileges(
    server: Server,
) -> None:
    """As a migration run by ledger_owner would make them: a table with a serial column (its
    sequence) the worker may read and insert into, not update unless granted; a function
    nobody but the owner may execute."""
    with psycopg.connect(server.dsn("ledger_owner", "ledger"), autocommit=True) as owner:
        owner.execute("CREATE TABLE later_notes (note_id serial PRIMARY KEY, note text)")
        owner.execute("CREATE FUNCTION later_answer() RETURNS int LANGUAGE sql AS 'SELECT 42'")
    with psycopg.connect(server.dsn("ledger_worker", "ledger"), autocommit=True) as worker:
        inserted = worker.execute("INSERT INTO later_notes (note) VALUES ('a') RETURNING note_id")
        assert inserted.fetchone() == (1,)
        assert worker.execute("SELECT note FROM later_notes").fetchall() == [("a",)]
        for statement in ("UPDATE later_notes SET note = 'b'", "SELECT later_answer()"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                worker.execute(statement)


@pytest.mark.parametrize("database", ["postgres", "template1"])
@pytest.mark.parametrize("user", ["ledger_worker", "ledger_owner"])
def test_the_roles_cannot_connect_to_another_database(
    server: Server, user: str, database: str
) -> None:
    with pytest.raises(
        psycopg.OperationalError, match=f'permission denied for database "{database}"'
    ):
        psycopg.connect(server.dsn(user, database)).close()
    # the superuser reaches it (the table the roles cannot read is there)
    with psycopg.connect(server.superuser("postgres")) as connection:
        assert connection.execute("SELECT count(*) FROM payroll").fetchone() == (0,)


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 1) TO PROGRAM 'id'",
        "COPY accounts FROM PROGRAM 'id'",
        "SELECT pg_read_file('/etc/passwd')",
        "COPY accounts TO '/tmp/accounts.csv'",
    ],
)
@pytest.mark.parametrize("user", ["ledger_worker", "ledger_owner"])
def test_the_roles_cannot_run_programs_nor_touch_server_files(
    server: Server, user: str, statement: str
) -> None:
    with (
        psycopg.connect(server.dsn(user, "ledger")) as connection,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        connection.execute(statement)


def test_the_owner_role_is_no_superuser_and_owns_the_tables(server: Server) -> None:
    with psycopg.connect(server.dsn("ledger_owner", "ledger")) as connection:
        roles = connection.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles"
            " WHERE rolname LIKE 'ledger_%' ORDER BY rolname"
        ).fetchall()
        owners = connection.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    assert roles == [("ledger_owner", False, False, False), ("ledger_worker", False, False, False)]
    assert owners == [("ledger_owner",)]


async def test_a_shard_migrated_before_the_roles_existed_is_handed_over(
    server: Server, new_id: Callable[[str], str]
) -> None:
    """An existing deployment (README "Upgrading from the earlier compose file"): tables made
    by the superuser at the release before, the script run by hand, then `migrate` as the
    owner."""
    _create_database(server, "legacy")
    # the earlier compose file's shards: POSTGRES_USER=transfers, no `postgres` role there (the
    # README's `docker compose exec -e POSTGRES_USER=transfers ...` runs the script as it)
    with psycopg.connect(server.superuser("legacy"), autocommit=True) as connection:
        connection.execute("CREATE ROLE transfers SUPERUSER LOGIN PASSWORD 'old-shard-pw'")
    old_superuser = urlsplit(server.superuser("legacy"))
    old_superuser = old_superuser._replace(
        netloc=f"transfers:old-shard-pw@{old_superuser.hostname}:{old_superuser.port}"
    )
    upgrade(old_superuser.geturl(), "0003")
    result = _run_script(server, "legacy", superuser_dsn=old_superuser.geturl())
    assert result.returncode == 0, result.stderr
    upgrade(server.dsn("ledger_owner", "legacy"))

    router = ShardRouter.from_dsns([server.dsn("ledger_worker", "legacy")])
    try:
        await _every_step(Ledger(router), new_id)
    finally:
        await router.dispose()
    with (
        psycopg.connect(server.dsn("ledger_worker", "legacy")) as connection,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        connection.execute("UPDATE alembic_version SET version_num = '9999'")


def test_running_the_script_again_narrows_a_wider_default(server: Server) -> None:
    """A shard whose first script gave the worker UPDATE on every future table."""
    default_acl = (
        "SELECT defaclacl::text FROM pg_default_acl"
        " WHERE defaclrole = 'ledger_owner'::regrole AND defaclobjtype = 'r'"
    )
    with psycopg.connect(server.superuser("ledger"), autocommit=True) as connection:
        connection.execute(
            "ALTER DEFAULT PRIVILEGES FOR ROLE ledger_owner IN SCHEMA public"
            " GRANT UPDATE ON TABLES TO ledger_worker"
        )
        assert "ledger_worker=arw/" in str(connection.execute(default_acl).fetchone())
        result = _run_script(server, "ledger")
        assert result.returncode == 0, result.stderr
        assert connection.execute(default_acl).fetchone() == ("{ledger_worker=ar/ledger_owner}",)


def test_the_script_refuses_a_missing_password(server: Server, tmp_path: Path) -> None:
    (tmp_path / "ledger_owner_password").write_text("only-one")
    result = _run_script(server, "ledger", tmp_path)
    assert result.returncode != 0
    assert "ledger_worker_password is missing or empty" in result.stderr


def test_the_compose_health_check_is_over_tcp_and_answers(server: Server) -> None:
    """The shards' health check, as docker-compose.yml has it, run as Docker runs CMD-SHELL
    (`sh -c`) against this server's port: 0 while it accepts TCP connections, non-zero on a
    port where nothing listens."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kind, command = compose["x-shard"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    assert command.split()[0] == "pg_isready"

    def exit_code(port: str) -> int:
        environment = {"PATH": f"{PSQL_DIR}:/usr/bin:/bin"}
        shell = ["sh", "-c", command.replace("5432", port)]
        return subprocess.run(shell, env=environment, capture_output=True, check=False).returncode

    assert exit_code(str(urlsplit(server.superuser_dsn).port)) == 0
    assert exit_code("1") != 0
