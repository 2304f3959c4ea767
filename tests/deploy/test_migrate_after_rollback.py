"""A rollback (README "Safe deploys") runs the previous image's `transfers db upgrade` on shards a
later release migrated: it must succeed and leave them alone, or the migrate job, retried for
120 s, fails and the old workers never start."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from shards.migrate import MIGRATIONS, upgrade
from tests.support.cli_runs import run_cli

LATER_RELEASE = "9001_from_a_later_release"  # a revision id this release has never heard of
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


@pytest.fixture
def migrated_by_a_later_release(dsns: list[str]) -> Iterator[str]:
    """A shard database migrated to this release's head, then stamped as a later release
    leaves it."""
    name = f"rollback_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsns[0], autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = make_url(dsns[0]).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(dsn)
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute("UPDATE alembic_version SET version_num = %s", [LATER_RELEASE])
        yield dsn
    finally:
        with psycopg.connect(dsns[0], autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _version(dsn: str) -> list[tuple[str]]:
    with psycopg.connect(dsn) as connection:
        return connection.execute("SELECT version_num FROM alembic_version").fetchall()


def test_db_upgrade_of_a_newer_shard_says_so_and_succeeds(
    migrated_by_a_later_release: str, dsns: list[str], tmp_path: Path
) -> None:
    shards = ",".join([dsns[1], migrated_by_a_later_release])  # one at head, one newer
    result = run_cli(("db", "upgrade"), {"SHARD_DSNS": shards, "PATH": "/usr/bin:/bin"}, tmp_path)

    assert result.exit_code == 0, result
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stdout
    assert lines[0].endswith(f": at revision {HEAD}")
    assert lines[1].endswith(
        f": at revision {LATER_RELEASE}, newer than this release's {HEAD}: left as it is"
    )
    assert _version(migrated_by_a_later_release) == [(LATER_RELEASE,)]


def test_the_json_answer_marks_the_newer_shard(
    migrated_by_a_later_release: str, tmp_path: Path
) -> None:
    environment = {"SHARD_DSNS": migrated_by_a_later_release, "PATH": "/usr/bin:/bin"}
    result = run_cli(("db", "upgrade", "--json"), environment, tmp_path)

    assert result.exit_code == 0, result
    [shard] = json.loads(result.stdout)["shards"]
    assert (shard["revision"], shard["newer_than_release"]) == (LATER_RELEASE, True)
