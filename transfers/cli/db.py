"""`transfers db upgrade`: apply the migrations to every shard, or to one."""

from __future__ import annotations

from typing import Annotated

import typer

from shards.errors import ConfigError
from transfers.cli.common import (
    EXIT_BAD_INPUT,
    JsonOption,
    StackOption,
    emit,
    exit_with,
    fail,
    settings_from,
)
from transfers.terminal import console


def upgrade_command(
    shard: Annotated[
        int | None, typer.Option("--shard", help="Only this shard (index in SHARD_DSNS).")
    ] = None,
    revision: Annotated[str, typer.Option(help="Target Alembic revision.")] = "head",
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upgrade the schema of every shard (idempotent, safe to run concurrently)."""
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from shards.migrate import NewerThanThisRelease, upgrade
    from shards.shard import redact, sqlalchemy_url

    settings = settings_from(stack, as_json)
    try:
        dsns = settings.dsn_list()
    except ValueError as error:
        exit_with(ConfigError(str(error)), as_json)
    try:
        for dsn in dsns:  # every DSN parsed before the first shard is migrated
            sqlalchemy_url(dsn)
    except (ValueError, ArgumentError) as error:  # the message names a part, never the DSN
        exit_with(ConfigError(f"SHARD_DSNS: {error}"), as_json)
    if shard is not None:
        if not 0 <= shard < len(dsns):
            fail(
                f"--shard {shard} is out of range: {len(dsns)} shards configured",
                EXIT_BAD_INPUT,
                as_json=as_json,
            )
        dsns = [dsns[shard]]
    done: dict[str, str] = {}
    newer: dict[str, str] = {}  # a rollback's old release on shards a later one migrated
    for dsn in dsns:
        try:
            done[redact(dsn)] = upgrade(dsn, revision)
        except NewerThanThisRelease as found:
            done[redact(dsn)] = found.revision
            newer[redact(dsn)] = str(found)
        except (ValueError, ArgumentError) as error:  # a connection option only the driver reads
            exit_with(ConfigError(f"SHARD_DSNS: {error}"), as_json)
        except DBAPIError as error:  # unreachable, refused, or not allowed to migrate
            reason = str(error.orig).strip().splitlines()[0] if error.orig else "unreachable"
            fail(f"cannot migrate {redact(dsn)}: {reason}", as_json=as_json)

    def render() -> None:
        for dsn, rev in done.items():
            console.print(f"{dsn}: {newer.get(dsn, f'at revision {rev}')}")

    shards = [
        {"dsn": dsn, "revision": rev, "newer_than_release": dsn in newer}
        for dsn, rev in done.items()
    ]
    emit({"shards": shards}, as_json, render)


def register(app: typer.Typer) -> None:
    """Add `transfers db upgrade`."""
    db_app = typer.Typer(help="Database schema of the shards.", no_args_is_help=True)
    db_app.command("upgrade")(upgrade_command)
    app.add_typer(db_app, name="db")
