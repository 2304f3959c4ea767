"""The `transfers` command line (Typer + Rich); every command takes --json.

One module per command or command group, named by it (`audit`, `accounts`, `pending` for
post|void, ...; `run_worker`, since `worker` is the top-level worker.py), each with a
`register(app)` that adds its commands with `app.command(name)(function)`, or its group with
`app.add_typer(group, name=...)`. The tuple below is their order in `transfers --help`.
"""

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
