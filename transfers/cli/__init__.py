"""The `transfers` command line (Typer + Rich); every command takes --json."""

from __future__ import annotations

import typer

from transfers.cli import (
    accounts,
    bench,
    chaos,
    codec_server_command,
    db,
    dev,
    operator_commands,
    pending_commands,
    transfer_commands,
    worker_command,
)

app = typer.Typer(
    name="transfers",
    help="Cross-shard money transfers as Temporal sagas over PostgreSQL shards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for module in (
    db,
    accounts,
    transfer_commands,
    pending_commands,
    operator_commands,
    dev,
    worker_command,
    codec_server_command,
    bench,
    chaos,
):
    module.register(app)


def main() -> None:
    app()
