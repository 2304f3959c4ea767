"""Migrations: safe to run again, and from several processes at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from sqlalchemy.engine import make_url

from shards.migrate import upgrade

HEAD = "0006"


@pytest.fixture
def empty_database(dsns: list[str]) -> Iterator[str]:
    """A brand-new database on the first test server, dropped afterwards."""
    name = f"migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsns[0], autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(dsns[0]).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsns[0], autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _tables(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
    return [row[0] for row in rows]


def test_upgrade_twice_changes_nothing_the_second_time(empty_database: str) -> None:
    assert upgrade(empty_database) == HEAD
    tables = _tables(empty_database)

    assert upgrade(empty_database) == HEAD
    assert (
        _tables(empty_database)
        == tables
        == ["accounts", "alembic_version", "entries", "holds", "transfer_claims"]
    )


def test_three_concurrent_upgrades_of_one_shard_all_succeed(empty_database: str) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        revisions = list(pool.map(upgrade, [empty_database] * 3))

    assert revisions == [HEAD] * 3
    assert _tables(empty_database) == [
        "accounts",
        "alembic_version",
        "entries",
        "holds",
        "transfer_claims",
    ]
    with psycopg.connect(empty_database) as connection:
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert versions == [(HEAD,)]
