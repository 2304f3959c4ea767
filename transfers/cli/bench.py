"""`transfers bench ...`: throughput and latency figures (benchmarks, not timed tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group, RenderableType
from rich.table import Table

from shards.errors import ConfigError
from transfers.cli import bench_e2e
from transfers.cli.common import (
    EXIT_FAILED,
    JsonOption,
    StackOption,
    emit,
    exit_with,
    fail,
    run,
    settings_from,
)
from transfers.terminal import console, errors

if TYPE_CHECKING:
    from rich.progress import TaskID

    from transfers.devtools.bench.shards import ScenarioResult


def shards_command(
    duration_s: Annotated[
        float, typer.Option("--duration", min=0.1, help="Seconds measured per scenario.")
    ] = 5.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Pairs in flight at once.")] = 16,
    accounts: Annotated[int, typer.Option(min=2, help="Accounts of the bench.")] = 10_000,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Debit+credit pairs across shards: the Ledger under both strategies against plain psycopg.

    Uses the shards of SHARD_DSNS or of a running dev stack; with neither, starts three durable
    embedded PostgreSQL servers for the run and removes them afterwards.
    """
    from transfers.devtools.bench.shards import BenchOptions, run_shard_bench

    settings = settings_from(stack, as_json)
    options = BenchOptions(duration_s=duration_s, concurrency=concurrency, accounts=accounts)
    try:
        given = settings.dsn_list() if settings.shard_dsns else None
    except ValueError as error:
        exit_with(ConfigError(f"SHARD_DSNS: {error}"), as_json)
    view = _LiveView()
    with _shards(given, as_json) as dsns, _live(view, as_json):
        results = run(lambda: run_shard_bench(dsns, options, view.progress, view.add), as_json)
    emit({"scenarios": [result.as_json() for result in results]}, as_json, lambda: None)


class _LiveView:
    """A line per running scenario above the table of the finished ones."""

    def __init__(self) -> None:
        from rich.progress import Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(
            TextColumn("{task.description}"),
            TextColumn("{task.fields[pairs]:>7} pairs"),
            TimeElapsedColumn(),
        )
        self.running: dict[tuple[str, str], TaskID] = {}
        self.results: list[ScenarioResult] = []

    def progress(self, scenario: str, strategy: str, pairs: int) -> None:
        key = (scenario, strategy)
        if key not in self.running:
            description = f"{scenario} / {strategy}"
            self.running[key] = self.bars.add_task(description, total=None, pairs=0)
        self.bars.update(self.running[key], pairs=pairs)

    def add(self, result: ScenarioResult) -> None:
        self.results.append(result)
        self.bars.remove_task(self.running.pop((result.name, result.strategy)))

    def __rich__(self) -> RenderableType:
        return Group(_table(self.results), self.bars) if self.running else _table(self.results)


def _table(results: list[ScenarioResult]) -> Table:
    table = Table(title="debit+credit pairs across shards")
    for column in ("scenario", "strategy", "pairs/s", "p50 ms", "p99 ms", "x plain", "failed"):
        table.add_column(column, justify="left" if column in {"scenario", "strategy"} else "right")
    for result in results:
        table.add_row(
            result.name,
            result.strategy,
            f"{result.pairs_per_s:,.0f}",
            f"{result.p50_ms:.1f}",
            f"{result.p99_ms:.1f}",
            f"{result.ratio_to_plain:.2f}",
            str(result.failed),
        )
    return table


@contextlib.contextmanager
def _live(view: _LiveView, as_json: bool) -> Iterator[None]:
    if as_json:  # stdout carries the JSON object only
        yield
        return
    from rich.live import Live

    with Live(view, console=console, refresh_per_second=4):
        yield


@contextlib.contextmanager
def _shards(given: list[str] | None, as_json: bool) -> Iterator[list[str]]:
    if given:
        yield given
        return
    if not as_json:
        errors.print("no SHARD_DSNS and no dev stack: starting 3 temporary durable shards")
    from transfers.devtools.bench.shards import temporary_shards

    with contextlib.ExitStack() as stack:
        try:
            dsns = stack.enter_context(temporary_shards())
        except RuntimeError as error:  # PostgreSQL missing (the `embedded` extra) or not starting
            fail(str(error), EXIT_FAILED, "StackError", as_json)
        yield dsns


def register(app: typer.Typer) -> None:
    """Add `transfers bench shards|e2e`."""
    bench_app = typer.Typer(
        help="Benchmarks: figures to compare, not pass/fail tests.", no_args_is_help=True
    )
    bench_app.command("shards")(shards_command)
    bench_app.command("e2e")(bench_e2e.e2e_command)
    app.add_typer(bench_app, name="bench")
