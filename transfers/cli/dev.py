"""`transfers dev`: Temporal and its Web UI, the shards and a worker, here, until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from transfers.cli.common import EXIT_BAD_INPUT, JsonOption, exits_without_teardown, fail
from transfers.stack_location import DEFAULT_DATA_DIR


@exits_without_teardown
def dev_command(
    shards: Annotated[int, typer.Option("--shards", min=1, max=16, help="Number of shards.")] = 3,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where Temporal and the shards keep their data.")
    ] = DEFAULT_DATA_DIR,
    temporal_port: Annotated[
        int, typer.Option("--temporal-port", min=1, max=65535, help="Temporal gRPC port.")
    ] = 7233,
    ui_port: Annotated[
        int, typer.Option("--ui-port", min=1, max=65535, help="Temporal Web UI port.")
    ] = 8233,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run a worker (else: `transfers worker`).")
    ] = True,
    demo: Annotated[
        bool, typer.Option("--demo", help="Open sample accounts and run sample transfers.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run Temporal (with its Web UI), PostgreSQL shards and a worker here until Ctrl-C."""
    # Imported here: the stack and its reporters bring the Temporal SDK, pydantic and the shards.
    import asyncio

    from transfers.devtools.devstack.reporters import ConsoleReporter, JsonReporter
    from transfers.devtools.devstack.stack import DevOptions, serve

    if temporal_port == ui_port:
        fail("--temporal-port and --ui-port must differ", EXIT_BAD_INPUT, as_json=as_json)
    options = DevOptions(
        data_dir=data_dir,
        shard_count=shards,
        temporal_port=temporal_port,
        ui_port=ui_port,
        worker=worker,
        demo=demo,
    )
    reporter = JsonReporter() if as_json else ConsoleReporter(data_dir, worker)
    raise typer.Exit(asyncio.run(serve(options, reporter)))


def register(app: typer.Typer) -> None:
    """Add `transfers dev`."""
    app.command("dev")(dev_command)
