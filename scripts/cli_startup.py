"""CLI start-up (a benchmark, not a test): median wall times of commands and of their baselines.

    .venv/bin/python scripts/cli_startup.py [--runs 15] [--stack DIR]

Each command runs side by side with the import it is compared to, alternating which goes first,
so that other load on the machine weighs on both alike:

    transfers --help               vs  python -c "import typer"
    transfers status ID            vs  python -c "import temporalio.client"
    transfers accounts show ID     vs  python -c "import psycopg"

`status` and `accounts show` ask a real stack: the one of --stack (a running `transfers dev`), or
else a `transfers dev --shards 2` started here in a temporary folder and stopped afterwards. Goals
(issue 13): ratio at most 2, 1.3 and 1.5. See BENCHMARKS.md, "CLI start-up".
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent
TRANSFERS = str(BIN / "transfers")
PYTHON = str(BIN / "python")
# The stack file is read only when none of these is set (transfers.settings).
CLUSTER_SETTINGS = ("TEMPORAL_", "SHARD_")
ENV = {name: value for name, value in os.environ.items() if not name.startswith(CLUSTER_SETTINGS)}
TRANSFER_ID = "cli-startup-1"
ACCOUNT_ID = "cli-startup-a"


def transfers(*args: str, stack: Path) -> str:
    done = subprocess.run(  # noqa: S603 (our own executable, our own arguments)
        [TRANSFERS, *args, "--stack", str(stack)], env=ENV, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"transfers {' '.join(args)}: {done.stderr or done.stdout}")
    return done.stdout


@contextmanager
def dev_stack() -> Iterator[Path]:
    """A `transfers dev` of its own, with a worker, until the figures are taken."""
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as folder:
        data_dir = Path(folder) / "stack"
        command = [TRANSFERS, "dev", "--shards", "2", "--data-dir", str(data_dir), "--json"]
        command += ["--temporal-port", "7391", "--ui-port", "7392"]
        dev = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, text=True)  # noqa: S603
        try:
            for line in dev.stdout or ():
                event = json.loads(line)
                if event["event"] == "ready":
                    break
                if event["event"] == "error":
                    raise SystemExit(f"transfers dev: {event['message']}")
            else:
                raise SystemExit("transfers dev stopped before it was ready")
            yield data_dir
        finally:
            dev.send_signal(signal.SIGINT)
            dev.wait(timeout=60)


def prepare(stack: Path) -> None:
    """An account and a finished transfer for the commands to show."""
    for account in (ACCOUNT_ID, "cli-startup-b"):
        transfers("accounts", "open", account, "--currency", "USD", stack=stack)
    transfers("accounts", "deposit", ACCOUNT_ID, "10.00", "--id", "cli-startup-dep", stack=stack)
    transfers(
        "submit", "--from", ACCOUNT_ID, "--to", "cli-startup-b", "--amount", "1.00",
        "--id", TRANSFER_ID, stack=stack,
    )  # fmt: skip


def wall_time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    return time.perf_counter() - started


Pairs = dict[str, tuple[list[str], list[str]]]  # name -> (command, baseline)


def measure(pairs: Pairs, runs: int) -> dict[str, dict[str, float]]:
    """Median seconds of each command and its baseline, run in turns (one warm-up run each)."""
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in pairs}
    for turn in range(runs + 1):
        for name, (command, baseline) in pairs.items():
            order = [(0, command), (1, baseline)]
            for index, argv in order if turn % 2 else reversed(order):
                seconds = wall_time(argv)
                if turn:  # the first turn only warms the file cache
                    times[name][index].append(seconds)
    figures = {}
    for name, (command_s, baseline_s) in times.items():
        command, baseline = statistics.median(command_s), statistics.median(baseline_s)
        figures[name] = {
            "command_s": round(command, 3),
            "baseline_s": round(baseline, 3),
            "ratio": round(command / baseline, 2),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each (median)")
    parser.add_argument("--stack", type=Path, help="data dir of a running `transfers dev`")
    options = parser.parse_args()
    with dev_stack() if options.stack is None else _given(options.stack) as stack:
        prepare(stack)
        on_stack = ["--stack", str(stack)]
        pairs = {
            "transfers --help": ([TRANSFERS, "--help"], [PYTHON, "-c", "import typer"]),
            "transfers status": (
                [TRANSFERS, "status", TRANSFER_ID, *on_stack],
                [PYTHON, "-c", "import temporalio.client"],
            ),
            "transfers accounts show": (
                [TRANSFERS, "accounts", "show", ACCOUNT_ID, *on_stack],
                [PYTHON, "-c", "import psycopg"],
            ),
        }
        figures = measure(pairs, options.runs)
    print(f"{'command':<26}{'median s':>10}{'baseline s':>12}{'ratio':>8}")
    for name, row in figures.items():
        print(f"{name:<26}{row['command_s']:>10.3f}{row['baseline_s']:>12.3f}{row['ratio']:>8.2f}")


@contextmanager
def _given(stack: Path) -> Iterator[Path]:
    yield stack


if __name__ == "__main__":
    main()
