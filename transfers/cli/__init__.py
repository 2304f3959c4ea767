"""The `transfers` command line (Typer + Rich); every command takes --json."""

from __future__ import annotations

import typer

from transfers.cli import (
    accounts,
    audit,
    bench,
    chaos,
    codec_server,
    db,
    dev,
    pending,
    run_worker,
    stuck_refunds,
    transfer,
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
    transfer,
    audit,
    pending,
    stuck_refunds,
    dev,
    run_worker,
    codec_server,
    bench,
    chaos,
):
    module.register(app)


def main() -> None:
    app()
