"""`transfers chaos`: the bank invariants of a fresh embedded stack under a seeded fault schedule.

Exit codes: 0 no violation; 1 violations, or the stack failed; 2 bad input.
"""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shards.errors import InfrastructureError
from transfers.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    JsonOption,
    emit,
    exits_without_teardown,
    fail,
)
from transfers.durations import EXAMPLES, parse_seconds
from transfers.terminal import console, errors

if TYPE_CHECKING:
    from transfers.devtools.chaos.report import ChaosReport
    from transfers.devtools.chaos.run import ChaosOptions
    from transfers.devtools.chaos.schedule import Fault


@exits_without_teardown
def chaos_command(
    duration: Annotated[
        str, typer.Option("--duration", help=f"Traffic time, {EXAMPLES} (at least 75s).")
    ] = "120s",
    seed: Annotated[
        int | None,
        typer.Option("--seed", min=0, help="The same seed draws the same faults; default: new."),
    ] = None,
    shards: Annotated[int, typer.Option("--shards", min=2, max=8, help="Number of shards.")] = 3,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Clients submitting at once.")
    ] = 12,
    batch_concurrency: Annotated[
        int,
        typer.Option(
            "--batch-concurrency",
            min=0,
            max=16,
            help="Clients submitting batches of 5-50 transfers at once, beside the others.",
        ),
    ] = 1,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="A new or empty dir for the stack; default: a temporary one, removed after a "
            "run without violations.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Start a stack, move money under faults, then check that no cent was made or lost."""
    # Imported here, asyncio too: every other command's start-up (and --help) goes without.
    import asyncio
    import secrets
    import shutil
    import tempfile

    from transfers.devtools.chaos.run import ChaosOptions
    from transfers.devtools.chaos.schedule import build_schedule
    from transfers.devtools.devstack.processes import StackError

    seconds = parse_seconds(duration)
    if seconds is None:
        fail(f"--duration {duration} is not a duration {EXAMPLES}", EXIT_BAD_INPUT, as_json=as_json)
    if data_dir is not None and data_dir.exists() and any(data_dir.iterdir()):
        fail(f"--data-dir {data_dir} is not empty", EXIT_BAD_INPUT, as_json=as_json)
    seed = secrets.randbelow(1_000_000) if seed is None else seed
    try:
        schedule = build_schedule(seed, seconds, shards)
    except ValueError as error:  # too short for every kind of fault
        fail(str(error), EXIT_BAD_INPUT, as_json=as_json)
    temporary = data_dir is None
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="transfers-chaos-"))
    options = ChaosOptions(seed, seconds, data_dir, shards, concurrency, batch_concurrency)
    try:
        report = asyncio.run(_run(options, schedule))
    except (StackError, InfrastructureError) as error:  # the stack broke down, not a check
        fail(f"{error}{_kept(data_dir)}", EXIT_FAILED, "StackError", as_json)
    except (KeyboardInterrupt, asyncio.CancelledError):
        fail(f"interrupted{_kept(data_dir)}", 130, "Interrupted", as_json)
    if temporary and not report.violations:
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        report = replace(report, data_dir=str(data_dir))
    emit(report.as_json(), as_json, lambda: report.render(console))
    if report.violations:
        raise typer.Exit(EXIT_FAILED)


async def _run(options: ChaosOptions, schedule: list[Fault]) -> ChaosReport:
    import asyncio

    from transfers.devtools.chaos.progress import ChaosProgress
    from transfers.devtools.chaos.run import ChaosRun

    run = ChaosRun(options, schedule, ChaosProgress(errors))
    # SIGTERM (a CI timeout, `kill`) stops the run like Ctrl-C: the stack is stopped, not left.
    this = asyncio.current_task()
    if this is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    with run.progress.shown():
        return await run.execute()


def _kept(data_dir: Path) -> str:
    """Where to look at what the run left, when it got as far as a folder to leave it in."""
    return f" (data kept in {data_dir})" if data_dir.is_dir() else ""


def register(app: typer.Typer) -> None:
    """Add `transfers chaos`."""
    app.command("chaos")(chaos_command)
