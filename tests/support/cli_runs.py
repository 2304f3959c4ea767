"""The `transfers` CLI run as a user runs it, in a subprocess, against the test shards."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from transfers.settings import Settings


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error_lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


Cli = Callable[..., CliResult]
CliMany = Callable[[Sequence[tuple[str, ...]]], list[CliResult]]


def run_cli(
    args: tuple[str, ...], env: dict[str, str], cwd: Path, timeout_s: float = 120
) -> CliResult:
    completed = subprocess.run(
        [sys.executable, "-m", "transfers.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout_s,
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def assert_one_clean_line(result: CliResult, exit_code: int) -> str:
    """A user mistake or a refusal: the exit code, one error line, no traceback."""
    assert result.exit_code == exit_code, result
    assert "Traceback" not in result.stderr
    assert len(result.error_lines) == 1, result.stderr
    return result.error_lines[0]


AsyncCli = Callable[..., Awaitable[CliResult]]


def cli_against(settings: Settings, cwd: Path) -> AsyncCli:
    """`await cli("post", "t-1")` against the Temporal server, task queue and shards of
    `settings`. It runs in a thread: the event loop stays free for a worker in this process."""
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TRANSFERS_TASK_QUEUE": settings.transfers_task_queue,
        "SHARD_DSNS": settings.shard_dsns,
    }
    return lambda *args: asyncio.to_thread(run_cli, args, environment, cwd)


@pytest.fixture
def cli_env(dsns: list[str]) -> dict[str, str]:
    return {**os.environ, "SHARD_DSNS": ",".join(dsns)}


@pytest.fixture
def cli(cli_env: dict[str, str], tmp_path: Path) -> Cli:
    """`cli("accounts", "show", "acc-1")`; the working directory has no .env or stack.json."""
    return lambda *args: run_cli(args, cli_env, tmp_path)


@pytest.fixture
def cli_many(cli: Cli) -> CliMany:
    """Several independent runs side by side: each one spends most of its time starting Python."""

    def run_all(runs: Sequence[tuple[str, ...]]) -> list[CliResult]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda args: cli(*args), runs))

    return run_all
