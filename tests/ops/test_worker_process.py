"""`python worker.py` as a real process: dead right after a commit, refused start-ups, clean
shutdown."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client

from activities.ledger import CRASH_AFTER_COMMIT, CRASH_EXIT_CODE
from tests.support.lost_tasks import entries_of
from tests.support.workers import Accounts, steps_in_history
from transfers.client import TransfersClient, workflow_id
from transfers.devtools.embedded_pg import free_port
from transfers.settings import Settings
from workflows.models import TransferRequest, TransferStatus

WORKER_SCRIPT = Path(__file__).parents[2] / "worker.py"


class WorkerProcess:
    """`python worker.py` configured by its environment only, its log in a file."""

    def __init__(self, settings: Settings, directory: Path, **overrides: str) -> None:
        self.environment = {
            "PATH": "/usr/bin:/bin",
            "TEMPORAL_ADDRESS": settings.temporal_address,
            "TRANSFERS_TASK_QUEUE": settings.transfers_task_queue,
            "SHARD_DSNS": settings.shard_dsns,
            "STARTUP_TIMEOUT_S": "10",
        } | overrides
        self.directory = directory  # no .env or .transfers/stack.json there to pick up
        self.log = directory / f"worker-{id(self)}.log"

    async def start(self) -> asyncio.subprocess.Process:
        with self.log.open("wb") as log:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER_SCRIPT),
                env=self.environment,
                cwd=self.directory,
                stderr=log,
            )

    async def start_polling(self) -> asyncio.subprocess.Process:
        """Start it and return once it polls its task queue."""
        process = await self.start()
        async with asyncio.timeout(30):
            while "polling task queue" not in self.log.read_text():
                assert process.returncode is None, self.log.read_text()
                await asyncio.sleep(0.1)
        return process


async def test_worker_dying_right_after_the_credit_commits_then_replaced_completes_once(
    client: Client,
    settings: Settings,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    tmp_path: Path,
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(0, shard=1)
    request = request_for(source, target, 600)
    transfers = TransfersClient(client, settings)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))

    dying = WorkerProcess(settings, tmp_path, **{CRASH_AFTER_COMMIT: "credit"})
    first = await dying.start_polling()
    try:
        await transfers.start(request)
        crash_code = await asyncio.wait_for(first.wait(), timeout=30)
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    assert crash_code == CRASH_EXIT_CODE, dying.log.read_text()
    # the debit and the credit committed; the workflow task that ran them is lost
    assert (await accounts.balance(source), await accounts.balance(target)) == (400, 600)
    assert await steps_in_history(handle) == []

    second = await WorkerProcess(settings, tmp_path).start_polling()
    try:
        # once the lost task times out (10 s), the second worker runs the saga again
        outcome = await asyncio.wait_for(transfers.submit(request), timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(second.wait(), timeout=30)

    assert outcome.status == TransferStatus.COMPLETED
    # both steps found on the shards and replayed, none applied twice
    assert [(entry.kind, entry.replayed) for entry in outcome.entries] == [
        ("debit", True),
        ("credit", True),
    ]
    rows = await entries_of(accounts.ledger, request.transfer_id)
    assert sorted((row.kind, row.marker) for row in rows) == [("credit", False), ("debit", False)]
    assert (await accounts.balance(source), await accounts.balance(target)) == (400, 600)
    assert exit_code == 0  # SIGTERM is a clean shutdown


@pytest.mark.parametrize("unreachable", ["shard", "temporal"])
async def test_worker_refuses_to_start_without_its_dependencies(
    settings: Settings, tmp_path: Path, unreachable: str
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    overrides = {"STARTUP_TIMEOUT_S": "1.5"}
    if unreachable == "shard":
        overrides["SHARD_DSNS"] = f"postgresql://transfers:s3cret@{dead}/ledger"
    else:
        overrides["TEMPORAL_ADDRESS"] = dead

    worker = WorkerProcess(settings, tmp_path, **overrides)
    process = await worker.start()
    exit_code = await asyncio.wait_for(process.wait(), timeout=20)
    error = worker.log.read_text()

    assert exit_code == 1
    [line] = [line for line in error.splitlines() if line.startswith("error:")]
    if unreachable == "shard":
        assert f"shard-0 at postgresql://{dead}/ledger is unreachable" in line
    else:
        assert f"Temporal at {dead} is unreachable" in line
    assert "waited 1.5s" in line
    assert "s3cret" not in error
