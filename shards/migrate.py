"""Apply the Alembic migrations to one shard or to all; safe to run again and concurrently."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from shards.shard import redact, sqlalchemy_url

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed 64-bit number: processes migrating the same shard at once take turns on it.
MIGRATION_LOCK_KEY = 7_331_202_611


class NewerThanThisRelease(Exception):
    """The shard is at a revision this release does not know: a later release migrated it and
    this one was rolled back to. Nothing is changed (expand-only migrations keep it working)."""

    def __init__(self, revision: str, head: str) -> None:
        super().__init__(f"at revision {revision}, newer than this release's {head}: left as it is")
        self.revision = revision


def upgrade(dsn: str, revision: str = "head") -> str:
    """Upgrade one shard to `revision`; returns the revision it is at afterwards. Raises
    NewerThanThisRelease, having changed nothing, on a shard a later release migrated."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    engine = create_engine(sqlalchemy_url(dsn), connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as connection:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            known = {found.revision for found in script.walk_revisions()}
            for at in MigrationContext.configure(connection).get_current_heads():
                if at not in known:  # alembic would fail: "Can't locate revision"
                    raise NewerThanThisRelease(at, script.get_current_head() or "base")
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            current = connection.execute(
                text("SELECT version_num FROM alembic_version")
            ).scalar_one()
    finally:
        engine.dispose()
    return str(current)


def upgrade_all(dsns: list[str], revision: str = "head") -> dict[str, str]:
    """Upgrade every shard; keys are the redacted DSNs."""
    return {redact(dsn): upgrade(dsn, revision) for dsn in dsns}
