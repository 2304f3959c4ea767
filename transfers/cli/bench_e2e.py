"""`transfers bench e2e`: transfers through Temporal end to end, against the Temporal ceiling.

Exit codes: 0 figures printed (a missed target is a figure, not a failure); 1 the stack failed or
the audit found money made or lost; 2 bad input.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from shards.errors import ConfigError, InfrastructureError, InvalidInput
from shards.lock_strategy import LockStrategy
from transfers.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    JsonOption,
    StackOption,
    emit,
    exit_with,
    exits_without_teardown,
    fail,
    settings_from,
)
from transfers.durations import EXAMPLES, parse_seconds
from transfers.terminal import console, errors, styled

if TYPE_CHECKING:
    from transfers.devtools.bench.e2e import E2EOptions, E2EReport, ScenarioResult
    from transfers.devtools.bench.e2e_run import BenchStack
    from transfers.settings import Settings

DEFAULT_PLOT = Path("bench-e2e.png")


@exits_without_teardown
def e2e_command(
    duration: Annotated[
        str, typer.Option("--duration", help=f"Measured time per scenario, {EXAMPLES}.")
    ] = "30s",
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=512, help="Closed loop: submitters.")
    ] = 32,
    rounds: Annotated[
        int,
        typer.Option(
            "--rounds", min=1, max=20, help="Closed loop: turns each scenario's time is cut in."
        ),
    ] = 3,
    accounts: Annotated[
        int, typer.Option("--accounts", min=10, help="Accounts opened over all shards.")
    ] = 30_000,
    loads: Annotated[
        str,
        typer.Option(
            "--loads",
            help="Open loop: offered rates as fractions of uniform's closed-loop rate "
            "(comma-separated; empty to skip).",
        ),
    ] = "0.25,0.5,0.75,1.0",
    inflight: Annotated[
        int,
        typer.Option(
            "--inflight", min=0, help="Transfers submitted before a worker drains them (0: skip)."
        ),
    ] = 5_000,
    strategy: Annotated[
        list[LockStrategy] | None,
        typer.Option("--strategy", help="Lock strategy to measure (repeat; default: both)."),
    ] = None,
    scenarios: Annotated[
        str | None,
        typer.Option(
            "--scenarios",
            help="Scenarios to run, comma-separated (default: all): ceiling, baseline, uniform, "
            "hot, open-uniform, inflight, batch, batch-hot.",
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="batch, batch-hot: transfers a batch (default 1000)."),
    ] = None,
    batch_concurrency: Annotated[
        int,
        typer.Option("--batch-concurrency", min=1, max=64, help="batch, batch-hot: in flight."),
    ] = 4,
    singles_alongside: Annotated[
        int,
        typer.Option(
            "--singles-alongside",
            min=0,
            max=512,
            help="batch, batch-hot: submitters of single transfers on the same accounts beside "
            "the batches (0: none).",
        ),
    ] = 0,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=8,
            help="Worker processes each scenario runs on (one Python process uses one core).",
        ),
    ] = 1,
    plot: Annotated[
        Path, typer.Option("--plot", help="PNG of latency against offered load.")
    ] = DEFAULT_PLOT,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Transfers/s, latency percentiles, CPU and memory, as ratios to a no-op workflow's.

    Runs against the stack of SHARD_DSNS and TEMPORAL_ADDRESS (or --stack); with neither, starts
    an embedded one (Temporal dev server, three durable shards) and removes it afterwards. Each
    scenario runs on a worker process of its own; the closed-loop ones take turns in --rounds.
    Takes about 12 x --duration, plus the drain of --inflight transfers.
    """
    import asyncio

    from transfers.devtools.bench.e2e import OPEN_UNIFORM, E2EOptions
    from transfers.devtools.bench.plot import INSTALL_HINT, plot_available
    from transfers.devtools.devstack.processes import StackError

    seconds = parse_seconds(duration)
    if seconds is None or seconds <= 0:
        fail(f"--duration {duration} is not a duration {EXAMPLES}", EXIT_BAD_INPUT, as_json=as_json)
    options = E2EOptions(
        duration_s=seconds,
        concurrency=concurrency,
        rounds=rounds,
        accounts=accounts,
        loads=_fractions(loads, as_json),
        inflight=inflight,
        strategies=tuple(dict.fromkeys(strategy)) if strategy else tuple(LockStrategy),
        scenarios=_scenarios(scenarios, as_json),
        batch_size=_batch_size(batch_size, as_json),
        batch_concurrency=batch_concurrency,
        singles_alongside=singles_alongside,
        workers=workers,
    )
    settings = settings_from(stack, as_json)
    given = stack is not None or bool(settings.shard_dsns)
    if given:
        try:
            settings.dsn_list()
        except ValueError as error:
            exit_with(ConfigError(f"SHARD_DSNS: {error}"), as_json)
    opens = bool(options.loads) and options.runs(OPEN_UNIFORM)  # the plot's runs
    if opens and not plot_available():
        errors.print(f"no plot: {INSTALL_HINT}")
    try:
        report = asyncio.run(_run(options, settings if given else None))
    except (StackError, InfrastructureError, RuntimeError) as error:
        fail(str(error), EXIT_FAILED, "StackError", as_json)
    except (KeyboardInterrupt, asyncio.CancelledError):
        fail("interrupted", 130, "Interrupted", as_json)
    if opens and plot_available():
        from transfers.devtools.bench.plot import plot_latency

        report.plot = str(plot_latency(report, plot))
    emit(report.as_json(), as_json, lambda: _render(report, console))
    if report.integrity is not None and report.integrity.audit_violations:
        raise typer.Exit(EXIT_FAILED)


def _fractions(text: str, as_json: bool) -> tuple[float, ...]:
    try:
        fractions = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        fail(f"--loads {text!r}: give fractions like 0.25,0.5,1.0", EXIT_BAD_INPUT, as_json=as_json)
    if any(not 0 < fraction <= 4 for fraction in fractions):
        fail(
            f"--loads {text!r}: each fraction must be above 0 and at most 4",
            EXIT_BAD_INPUT,
            as_json=as_json,
        )
    return fractions


def _batch_size(given: int | None, as_json: bool) -> int:
    from transfers.cli.batches import check_batch_size  # lazily: `transfers --help` stays light
    from workflows.batch_models import DEFAULT_BATCH_SIZE

    if given is None:
        return DEFAULT_BATCH_SIZE
    try:
        check_batch_size(given)
    except InvalidInput as error:
        exit_with(error, as_json)
    return given


def _scenarios(text: str | None, as_json: bool) -> tuple[str, ...]:
    """The scenarios named (in the bench's own order), or all of them."""
    from transfers.devtools.bench.e2e import OPEN_UNIFORM, SCENARIOS, UNIFORM

    if text is None:
        return SCENARIOS
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(SCENARIOS))
    if unknown or not names:
        fail(
            f"--scenarios {text!r}: {'unknown ' + ', '.join(unknown) if unknown else 'none named'}"
            f"; choose among {', '.join(SCENARIOS)}",
            EXIT_BAD_INPUT,
            as_json=as_json,
        )
    if OPEN_UNIFORM in names and UNIFORM not in names:
        fail(
            f"--scenarios {text!r}: {OPEN_UNIFORM} offers fractions of {UNIFORM}'s rate; "
            f"name {UNIFORM} too",
            EXIT_BAD_INPUT,
            as_json=as_json,
        )
    return tuple(name for name in SCENARIOS if name in names)


async def _run(options: E2EOptions, settings: Settings | None) -> E2EReport:
    import asyncio

    from transfers.devtools.bench.e2e_stack import embedded_stack, given_stack

    this = asyncio.current_task()
    if this is not None:  # SIGTERM stops the run like Ctrl-C: the stack is stopped, not left
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    view = _LiveView()
    with _live(view):
        if settings is not None:
            return await _bench(given_stack(settings), options, view)
        view.progress("starting the embedded stack", 0)
        async with embedded_stack() as stack:
            return await _bench(stack, options, view)


async def _bench(stack: BenchStack, options: E2EOptions, view: _LiveView) -> E2EReport:
    from transfers.devtools.bench.e2e_run import E2EBench

    return await E2EBench(stack, options, view.progress).run(view.add)


class _LiveView:
    """What runs now, above the table of the scenarios finished."""

    def __init__(self) -> None:
        self.label = ""
        self.done = 0
        self.results: list[ScenarioResult] = []

    def progress(self, label: str, done: int) -> None:
        self.label, self.done = label, done

    def add(self, result: ScenarioResult) -> None:
        self.results.append(result)

    def __rich__(self) -> RenderableType:
        line = Text(f"{self.label}: {self.done:,} done" if self.done else f"{self.label} ...")
        return Group(_scenarios_table(self.results), line) if self.results else line


@contextlib.contextmanager
def _live(view: _LiveView) -> Iterator[None]:
    """Progress on stderr, so stdout keeps the table or the JSON object alone."""
    from rich.live import Live

    with Live(view, console=errors, refresh_per_second=2, transient=True):
        yield


def _scenarios_table(results: list[ScenarioResult]) -> Table:
    table = Table(title="transfers bench e2e")
    columns = ("scenario", "per s", "p50 ms", "p95 ms", "p99 ms", "failed")
    cpu = ("server CPU s", "worker CPU s", "shards CPU s", "load CPU s", "CPU ms each", "RSS MB")
    for column in (*columns, *cpu):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for result in results:
        measured, usage = result.measurement, result.usage
        table.add_row(
            result.label,
            f"{result.per_s:,.1f}",
            f"{measured.p50_ms:,.0f}",
            f"{measured.p95_ms:,.0f}",
            f"{measured.p99_ms:,.0f}",
            str(measured.failed),
            _seconds(usage.server_cpu_s),
            _seconds(usage.worker_cpu_s),
            _seconds(usage.shards_cpu_s),
            _seconds(usage.load_cpu_s),
            "-" if result.cpu_ms_per_transfer is None else f"{result.cpu_ms_per_transfer:,.2f}",
            f"{usage.worker_peak_rss_mb:,.0f}",
        )
    return table


def _render(report: E2EReport, out: Console) -> None:
    out.print(_scenarios_table(report.scenarios))
    ratios = Table(title="ratios")
    ratios.add_column("ratio")
    ratios.add_column("value", justify="right")
    ratios.add_column("missing because")
    missing = report.missing_ratios()
    for name, value in report.ratios().items():
        ratios.add_row(name, "-" if value is None else f"{value:.2f}", missing.get(name, ""))
    out.print(ratios)
    if report.inflight is not None:
        inflight = report.inflight
        out.print(
            f"in flight: {inflight.transfers:,} submitted in {inflight.submit_s:.0f}s with no "
            f"worker, drained in {inflight.drain_s:.0f}s, {inflight.completed:,} COMPLETED; "
            f"worker peak RSS {inflight.usage.worker_peak_rss_mb:.0f} MB"
        )
    for result in report.scenarios:
        if result.alongside is not None:
            singles = result.alongside
            out.print(
                f"beside {result.label}: {singles.completed:,} single transfers COMPLETED, "
                f"{singles.failed} not, p99 {singles.p99_ms:,.0f} ms"
            )
    if report.integrity is not None:
        integrity = report.integrity
        out.print(
            f"audit: {integrity.audit_violations} violations; deadlocks: {integrity.deadlocks}"
        )
    targets = Table(title="targets")
    for column in ("target", "value", "met"):
        targets.add_column(column, justify="left" if column == "target" else "right")
    for target in report.targets():
        shown = "-" if target.value is None else f"{target.value:.2f}"
        met = {True: styled(("yes", "green")), False: styled(("no", "red")), None: Text("-")}
        targets.add_row(target.name, shown, met[target.met])
    out.print(targets)
    if report.plot is not None:
        out.print(f"plot: {report.plot}")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"
