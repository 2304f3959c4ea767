"""`transfers submit --file`, `status`, `list --batches` and `cancel --batch`, run as a user runs
them (subprocesses) against the test shards, Temporal and this test's worker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.support.cli_runs import AsyncCli, CliResult, cli_against
from tests.support.workers import Accounts
from transfers.settings import Settings

pytestmark = pytest.mark.usefixtures("worker")

HEADER = "transfer_id,from,to,amount,currency,memo\n"


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> AsyncCli:
    return cli_against(settings, tmp_path)


async def test_a_file_runs_in_batches_and_again_moves_no_money(
    cli: AsyncCli,
    tmp_path: Path,
    accounts: Accounts,
    new_id: Callable[[str], str],
) -> None:
    source = await accounts.open(10_000, shard=0)
    target = await accounts.open(shard=1)
    ids = [new_id("t") for _ in range(5)]
    amounts = ["1.00", "2.50", "300.00", "0.25", "0.01"]  # 300.00 is more than the source has
    rows = [f"{i},{source},{target},{a},USD,\n" for i, a in zip(ids, amounts, strict=True)]
    file = tmp_path / "payouts.csv"
    file.write_text(HEADER + "".join(rows))

    first = await cli("submit", "--file", str(file), "--batch-size", "2", "--json")
    again = await cli("submit", "--file", str(file), "--batch-size", "2", "--json")
    shown = await cli("submit", "--file", str(file), "--batch-size", "2")

    assert first.exit_code == 0, first
    data = first.json()
    assert data["counts"] == {"COMPLETED": 4, "FAILED": 1, "COMPENSATED": 0}
    assert [b["size"] for b in data["batches"]] == [2, 2, 1]
    assert [t["transfer_id"] for t in data["transfers"]] == ids
    refused = data["transfers"][2]
    assert refused == {
        "transfer_id": ids[2],
        "status": "FAILED",
        "step": "debit-refused",
        "error": refused["error"],
        "source_account_id": source,
        "target_account_id": target,
        "amount": "300.00",
        "currency": "USD",
    }
    assert refused["error"]["type"] == "InsufficientFunds"
    assert again.exit_code == 0, again
    assert again.json() == data
    assert shown.exit_code == 0, shown
    assert "│ COMPLETED   │         4 │" in shown.stdout
    assert await accounts.balance(source) == 10_000 - 100 - 250 - 25 - 1
    assert await accounts.balance(target) == 376


async def test_status_finds_a_transfer_inside_its_batch_and_list_shows_the_batch(
    cli: AsyncCli, tmp_path: Path, accounts: Accounts, new_id: Callable[[str], str]
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(shard=1)
    transfer_id = new_id("t")
    file = tmp_path / "one.jsonl"
    line = {"transfer_id": transfer_id, "from": source, "to": target, "amount": 1.5}
    file.write_text(json.dumps({**line, "currency": "USD"}) + "\n")
    submitted = await cli("submit", "--file", str(file), "--json")
    batch_id = submitted.json()["batches"][0]["batch_id"]

    status = await cli("status", transfer_id, "--json")
    said = await cli("status", transfer_id)
    listed = await _batches_listed(cli, batch_id, "--batches")
    beside_transfers = await _batches_listed(cli, batch_id)
    shown = await cli("list")
    filtered = await cli("list", "--status", "COMPLETED", "--json")
    cancel = await cli("cancel", "--batch", batch_id, "--json")

    assert status.exit_code == 0, status
    assert status.json()["batch_id"] == batch_id
    assert (status.json()["status"], status.json()["amount"]) == ("COMPLETED", "1.50")
    assert said.stdout.startswith(f"{transfer_id} COMPLETED (step completed) in batch {batch_id}")
    assert listed["counts"] == {"COMPLETED": 1, "FAILED": 0, "COMPENSATED": 0}
    assert (listed["size"], listed["amount"], listed["currency"]) == (1, "1.50", "USD")
    assert beside_transfers == listed
    assert batch_id in shown.stdout, shown.stdout
    assert (filtered.exit_code, sorted(filtered.json())) == (0, ["transfers"]), filtered
    assert cancel.exit_code == 1
    assert cancel.json()["error"]["type"] == "AlreadyFinished"


async def test_status_names_the_batch_that_owns_the_id_not_a_later_refused_transfer(
    cli: AsyncCli, tmp_path: Path, accounts: Accounts, new_id: Callable[[str], str]
) -> None:
    """A single `submit` of another request for the id starts a workflow (no `transfer-{id}`
    existed) that is refused at its claim; `status` still reports the batch's transfer."""
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(shard=1)
    transfer_id = new_id("t")
    file = tmp_path / "one.csv"
    file.write_text(HEADER + f"{transfer_id},{source},{target},1.50,USD,\n")
    submitted = await cli("submit", "--file", str(file), "--json")
    batch_id = submitted.json()["batches"][0]["batch_id"]
    other = ("--from", source, "--to", target, "--amount", "2.00", "--id", transfer_id)
    refused = await cli("submit", *other, "--json")

    status = await cli("status", transfer_id, "--json")

    assert refused.json()["error"]["type"] == "IdempotencyConflict", refused
    assert status.exit_code == 0, status
    assert status.json()["batch_id"] == batch_id
    assert (status.json()["status"], status.json()["amount"]) == ("COMPLETED", "1.50")
    assert await accounts.balance(target) == 150


async def _batches_listed(cli: AsyncCli, batch_id: str, *args: str) -> dict[str, object]:
    async with asyncio.timeout(15):  # visibility is eventually consistent
        while True:
            result = await cli("list", *args, "--json")
            assert result.exit_code == 0, result
            for row in result.json()["batches"]:
                if row["batch_id"] == batch_id and row["counts"] is not None:
                    return dict(row)
            await asyncio.sleep(0.3)


BAD_CSV = (
    HEADER
    + "t-ok-1,acc-a,acc-b,1.00,USD,\n"  # line 2: fine
    + ",acc-a,acc-b,1.00,USD,\n"  # 3: no transfer id
    + "t-bad-amount,acc-a,acc-b,1.234,USD,\n"  # 4: more decimals than USD has
    + "t-same,acc-a,acc-a,1.00,USD,\n"  # 5: same account
    + "t-ok-1,acc-a,acc-c,2.00,USD,\n"  # 6: transfer id of line 2 again
    + "t-cur,acc-a,acc-b,1.00,US,\n"  # 7: no currency
    + "t-short,acc-a,acc-b\n"  # 8: 3 fields
    + "t-neg,acc-a,acc-b,-1.00,USD,\n"  # 9: negative
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            BAD_CSV,
            [
                "line 3: missing or not text: transfer_id",
                "line 4: ",
                "line 5: ",
                "line 6: transfer_id t-ok-1 is on line 2 already",
                "line 7: ",
                "line 8: 3 fields where the header has 6",
                "line 9: ",
            ],
        ),
        ("id,from,to,amount,currency\nt-1,acc-a,acc-b,1.00,USD\n", ["line 1: the header must be"]),
        ("", ["line 1: the file is empty"]),
        (HEADER, ["line 1: no transfers in the file"]),
        (
            '{"transfer_id": "t-j1", "from": "acc-a", "to": "acc-b", "amount": "1", '
            '"currency": "USD"}\n'
            "{not json\n"
            '{"transfer_id": "t-j3", "from": "acc-a", "to": "acc-b", "amount": "1", '
            '"currency": "USD", "colour": "red"}\n'
            '["a list"]\n',
            ["line 2: not JSON", "line 3: unknown keys colour", "line 4: not a JSON object"],
        ),
    ],
    ids=["csv-rows", "csv-header", "empty", "header-only", "json-lines"],
)
async def test_a_bad_file_lists_every_bad_line_and_submits_nothing(
    cli: AsyncCli,
    tmp_path: Path,
    client: Client,
    task_queue: str,
    content: str,
    expected: list[str],
) -> None:
    file = tmp_path / "bad.txt"
    file.write_text(content)

    result = await cli("submit", "--file", str(file))
    as_json = await cli("submit", "--file", str(file), "--json")

    assert result.exit_code == 2, result
    assert "Traceback" not in result.stderr
    listed = [line for line in result.error_lines if line.startswith("line ")]
    assert len(listed) == len(expected), result.stderr
    for line, start in zip(listed, expected, strict=True):
        assert line.startswith(start), result.stderr
    assert as_json.exit_code == 2
    assert as_json.json()["error"]["type"] == "BadFile"
    assert [w async for w in client.list_workflows(f"TaskQueue = '{task_queue}'")] == []


async def test_bad_batch_sizes_and_missing_files_are_refused(cli: AsyncCli, tmp_path: Path) -> None:
    file = tmp_path / "ok.csv"
    file.write_text(HEADER + "t-1,acc-a,acc-b,1.00,USD,\n")

    results = [
        await cli("submit", "--file", str(file), "--batch-size", "0"),
        await cli("submit", "--file", str(file), "--batch-size", "2001"),
        await cli("submit", "--file", str(tmp_path / "missing.csv")),
        await cli("submit", "--file", str(file), "--from", "acc-a"),
        await cli("submit", "--from", "acc-a", "--to", "acc-b"),
    ]

    assert [r.exit_code for r in results] == [2, 2, 2, 2, 2], results
    assert "--batch-size 0: from 1 to 2,000" in results[0].stderr
    assert "cannot read" in results[2].stderr


def test_a_file_on_stdin_is_read(settings: Settings, tmp_path: Path) -> None:
    env = {**os.environ, "TEMPORAL_ADDRESS": settings.temporal_address}
    env |= {
        "TRANSFERS_TASK_QUEUE": settings.transfers_task_queue,
        "SHARD_DSNS": settings.shard_dsns,
    }
    done = subprocess.run(
        [sys.executable, "-m", "transfers.cli", "submit", "--file", "-"],
        input="transfer_id,from,to,amount,currency\nt-1,acc-a,acc-a,1.00,USD\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    result = CliResult(done.returncode, done.stdout, done.stderr)

    assert result.exit_code == 2, result
    assert "stdin: 1 bad line, nothing submitted" in result.stderr
    assert "line 2: " in result.stderr


def test_a_batch_started_without_our_memo_is_listed_with_what_is_known(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another client (or a test) started it without the `size` memo and the search attributes:
    the row says what it can, never a traceback."""
    from transfers.cli.batches import print_batches

    row = {
        "batch_id": "started-elsewhere-0123456789abcdef",
        "size": None,
        "amount": None,
        "currency": None,
        "counts": None,
        "started_at": "2026-12-03T10:25:27.123456+00:00",
    }

    print_batches([row])

    shown = capsys.readouterr().out
    assert "started-elsewhere-0123456789abcdef" in shown
    assert "running" in shown
