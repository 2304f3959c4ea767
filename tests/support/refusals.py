"""Bad input is refused with a specific message, the documented exit code, no traceback, and
nothing written: a fingerprint of every shard taken before and after proves the last part."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from activities.ledger import LedgerActivities
from shards import schema
from shards.ledger import Ledger
from shards.router import ShardRouter
from tests.support.cli_runs import CliResult, run_cli
from tests.support.workers import running_worker
from transfers.settings import Settings

Fingerprint = tuple[tuple[int, ...], ...]
# Refused by the money parser with InvalidAmount (exit 2 in the CLI): an amount is ASCII digits
# with at most one dot between digits, nothing else.
MALFORMED_AMOUNTS = {
    "Arabic-Indic digits": "١٢.٣٤",
    "full-width digits": "１２.３４",
    "5000 digits": "9" * 5000,
    "exponent": "1e3",
    "leading space": " 1",
    "trailing dot": "1.",
    "leading dot": ".5",
    "two minus signs": "--1",
    "decimal comma": "1,00",
    "NaN": "NaN",
    "infinity": "inf",
}
K = TypeVar("K")


async def fingerprint(router: ShardRouter, *, markers: bool = True) -> Fingerprint:
    """Per shard: accounts (count, balances, held, versions), entries and holds counted.

    `markers=False` leaves out marker entries: a refused transfer records one on purpose (so a
    resubmission after Temporal's retention is refused too), and it moves no money.
    """
    account_sums = select(
        func.count(),
        func.coalesce(func.sum(schema.accounts.c.balance), 0),
        func.coalesce(func.sum(schema.accounts.c.held), 0),
        func.coalesce(func.sum(schema.accounts.c.version), 0),
    )
    entry_count = select(func.count()).select_from(schema.entries)
    if not markers:
        entry_count = entry_count.where(~schema.entries.c.marker)
    hold_count = select(func.count()).select_from(schema.holds)
    shards = []
    for shard in router.shards:
        async with shard.begin() as connection:
            sums = (await connection.execute(account_sums)).one()
            counts = [(await connection.execute(q)).scalar_one() for q in (entry_count, hold_count)]
        shards.append((*(int(value) for value in sums), *counts))
    return tuple(shards)


@dataclass(frozen=True)
class CliCase:
    """One command line, what it must say (a regex on its one error line) and its exit code."""

    args: tuple[str, ...]
    message: str
    exit_code: int = 2
    env: dict[str, str] = field(default_factory=dict)


def run_cases(cases: dict[str, CliCase], env: dict[str, str], cwd: Path) -> dict[str, CliResult]:
    """Every case in its own process, four at a time: each spends most of its time starting."""

    def one(case: CliCase) -> CliResult:
        return run_cli(case.args, {**env, **case.env}, cwd)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(cases, pool.map(one, cases.values()), strict=True))


def assert_refused(result: CliResult, case: CliCase) -> None:
    """The case's exit code, no traceback, and its message: the one error line, or with
    --json the error object on stdout."""
    assert result.exit_code == case.exit_code, result
    assert "Traceback" not in result.stderr, result.stderr
    if "--json" in case.args:
        message = result.json()["error"]["message"]
    else:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        message = lines[0]
    assert re.search(case.message, message), message


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def serving_worker(
    temporal_env: WorkflowEnvironment, dsns: list[str], router: ShardRouter
) -> AsyncIterator[Settings]:
    """A worker on a task queue of its own, over the test shards: whatever a CLI with
    `cli_env(settings)` starts is run, and writes to the shards, while this lasts."""
    settings = Settings(
        temporal_address=temporal_env.client.service_client.config.target_host,
        transfers_task_queue=new_id("queue"),
        shard_dsns=",".join(dsns),
        _env_file=None,
    )
    async with running_worker(temporal_env.client, settings, LedgerActivities(Ledger(router))):
        yield settings


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment of a CLI process that talks to the worker of `settings`."""
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TRANSFERS_TASK_QUEUE": settings.transfers_task_queue,
        "SHARD_DSNS": settings.shard_dsns,
    }
