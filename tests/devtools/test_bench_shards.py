"""`transfers bench shards --json` on the test shards: the promised shape, and books still balanced.

Not a timed test: the figures depend on the machine; only their presence and shape are checked.
"""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from shards.audit import run_audit
from shards.router import ShardRouter
from transfers.cli import app
from transfers.devtools.bench.shards import STRATEGIES
from transfers.devtools.bench.workload import CURRENCY, SCENARIOS

FIELDS = {"name", "strategy", "pairs_per_s", "p50_ms", "p99_ms", "ratio_to_plain"}


async def test_bench_json_reports_every_scenario_and_leaves_the_books_balanced(
    dsns: list[str], router: ShardRouter
) -> None:
    arguments = ["bench", "shards", "--json", "--duration", "0.5", "--concurrency", "4"]
    arguments += ["--accounts", "60"]
    outcome = await asyncio.to_thread(
        CliRunner().invoke, app, arguments, env={"SHARD_DSNS": ",".join(dsns)}
    )

    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)  # exactly one JSON object, nothing else on stdout
    assert set(payload) == {"scenarios"}
    rows = payload["scenarios"]
    assert [(row["name"], row["strategy"]) for row in rows] == [
        (name, strategy) for name in SCENARIOS for strategy in STRATEGIES
    ]
    for row in rows:
        assert set(row) == FIELDS
        assert row["pairs_per_s"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert {row["ratio_to_plain"] for row in rows if row["strategy"] == "plain"} == {1.0}

    report = await run_audit(router)
    assert report.ok, (report.account_mismatches, report.contradictions)
    assert report.currencies[CURRENCY].in_flight == 0  # every debited pair was credited
