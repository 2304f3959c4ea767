"""`transfers bench e2e --json` against the test shards and dev server: the promised shape, every
transfer COMPLETED, the books balanced, and a PNG; batches counted as transfers. Not a timed test:
figures are only checked for presence and order, never against a speed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from shards.audit import run_audit
from shards.router import ShardRouter
from shards.schema import EntryKind, entries

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RATIOS = {"transfers_to_ceiling", "transfers_to_baseline", "hot_to_uniform"}
SINGLE_SCENARIOS = "ceiling,baseline,uniform,hot,open-uniform,inflight"
BATCH_TRANSFER_IDS = "bench-%-%-%"  # bench-{run}-{batch}-{n}; a single one is bench-{run}-{n}


async def _bench(env: dict[str, str], *arguments: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "transfers.cli",
        "bench",
        "e2e",
        *arguments,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
    return process.returncode or 0, stdout.decode(), stderr.decode()


async def test_e2e_bench_reports_every_scenario_and_leaves_the_books_balanced(
    temporal_env: WorkflowEnvironment, dsns: list[str], router: ShardRouter, tmp_path: Path
) -> None:
    plot = tmp_path / "latency.png"
    env = {
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "SHARD_DSNS": ",".join(dsns),
    }
    arguments = ["--json", "--duration", "2s", "--concurrency", "4", "--accounts", "60"]
    arguments += ["--loads", "0.5", "--inflight", "30", "--plot", str(plot)]
    arguments += ["--scenarios", SINGLE_SCENARIOS]

    code, stdout, stderr = await _bench(env, *arguments)

    assert code == 0, stderr
    report = json.loads(stdout)  # one JSON object, nothing else on stdout
    rows = report["scenarios"]
    assert [(row["name"], row["strategy"], row["mode"]) for row in rows] == [
        ("ceiling", None, "closed"),
        ("baseline", None, "closed"),
        ("uniform", "pessimistic", "closed"),
        ("hot", "pessimistic", "closed"),
        ("uniform", "optimistic", "closed"),
        ("hot", "optimistic", "closed"),
        ("open-uniform", "pessimistic", "open"),
    ]
    for row in rows:
        assert row["per_s"] > 0, row
        assert row["failed"] == 0, row
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], row
        assert row["worker_cpu_s"] > 0, row
        assert row["worker_peak_rss_mb"] > 0, row
        assert row["server_cpu_s"] is not None  # the dev server listens here: it is measured
    assert set(report["ratios"]) >= RATIOS
    assert all(report["ratios"][name] > 0 for name in RATIOS)
    assert report["ratios"]["batch_to_uniform"] is None
    assert report["ratios_missing"]["batch_to_uniform"] == "batch / pessimistic did not run"
    assert report["inflight"]["transfers"] == report["inflight"]["completed"] == 30
    assert report["integrity"] == {"audit_ok": True, "audit_violations": 0, "deadlocks": 0}
    assert {target["name"] for target in report["targets"]} >= {"uniform >= 0.9 x ceiling"}
    assert report["plot"] == str(plot)
    assert plot.read_bytes().startswith(PNG_SIGNATURE)
    audit = await run_audit(router)
    assert audit.ok, (audit.account_mismatches, audit.contradictions)


async def test_e2e_bench_counts_batches_in_transfers_with_single_ones_alongside(
    temporal_env: WorkflowEnvironment, dsns: list[str], router: ShardRouter
) -> None:
    env = {
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "SHARD_DSNS": ",".join(dsns),
    }
    arguments = ["--json", "--duration", "2s", "--rounds", "1", "--concurrency", "4"]
    arguments += ["--accounts", "60", "--strategy", "pessimistic"]
    arguments += ["--scenarios", "batch,uniform,batch-hot", "--batch-size", "25"]
    arguments += ["--batch-concurrency", "2", "--singles-alongside", "2", "--workers", "2"]
    debits_before = await _batch_entries(router, EntryKind.DEBIT)

    code, stdout, stderr = await _bench(env, *arguments)

    assert code == 0, stderr
    report = json.loads(stdout)
    rows = report["scenarios"]
    assert [(row["name"], row["strategy"], row["batch_size"]) for row in rows] == [
        ("uniform", "pessimistic", None),
        ("batch", "pessimistic", 25),
        ("batch-hot", "pessimistic", 25),
    ]
    for row in rows:
        assert row["failed"] == 0, row
        assert row["completed"] > 0, row
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], row
        assert row["cpu_ms_per_transfer"] > 0, row
    for row in rows[1:]:  # counted in transfers: whole batches of 25, latency per batch
        assert row["concurrency"] == 2
        assert row["completed"] % 25 == 0
        assert row["per_s"] == pytest.approx(row["batches_per_s"] * 25, rel=0.01)
        singles = row["singles_alongside"]  # on the same accounts: the hot one for batch-hot
        assert singles["completed"] > 0, singles
        assert singles["failed"] == 0, singles
    assert rows[0]["singles_alongside"] is None
    batch_to_uniform = report["ratios"]["batch_to_uniform"]
    assert batch_to_uniform == pytest.approx(rows[1]["per_s"] / rows[0]["per_s"], rel=0.01)
    assert report["ratios"]["batch_hot_to_batch"] > 0
    assert "batch_to_uniform" not in report["ratios_missing"]
    assert report["integrity"] == {"audit_ok": True, "audit_violations": 0, "deadlocks": 0}
    # every batched transfer the bench ran (warm-up included) was debited and credited
    debited = await _batch_entries(router, EntryKind.DEBIT) - debits_before
    assert debited >= rows[1]["completed"] + rows[2]["completed"]
    assert debited % 25 == 0
    credited = await _batch_entries(router, EntryKind.CREDIT)
    assert credited == await _batch_entries(router, EntryKind.DEBIT)


async def _batch_entries(router: ShardRouter, kind: EntryKind) -> int:
    """Entries of `kind` written for the bench's batched transfers, over all shards."""
    total = 0
    for shard in router.shards:
        async with shard.begin() as connection:
            query = select(func.count()).where(
                entries.c.kind == kind, entries.c.transfer_id.like(BATCH_TRANSFER_IDS)
            )
            total += int(await connection.scalar(query) or 0)
    return total


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--duration", "soon"], "--duration soon is not a duration"),
        (["--loads", "0.5,half"], "--loads '0.5,half': give fractions"),
        (["--loads", "0"], "each fraction must be above 0"),
        (["--scenarios", "uniform,bogus"], "--scenarios 'uniform,bogus': unknown bogus"),
        (["--scenarios", "open-uniform"], "name uniform too"),
        (["--batch-size", "0"], "--batch-size 0: from 1 to 2,000"),
    ],
)
async def test_e2e_bench_refuses_bad_options_before_starting_anything(
    arguments: list[str], message: str
) -> None:
    code, stdout, stderr = await _bench({"SHARD_DSNS": ""}, *arguments)

    assert code == 2
    assert message in stdout + stderr
