"""SIGTERM drains a worker process: it stops polling, lets the running step commit, exits 0, and
the next worker finishes the transfer (how a rolling deploy replaces workers)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

from temporalio.client import Client

from tests.ops.test_worker_process import WorkerProcess
from tests.support.workers import Accounts
from transfers.client import TransfersClient
from transfers.settings import Settings
from workflows.models import TransferRequest, TransferStatus


async def test_sigterm_lets_the_running_step_finish_then_the_next_worker_completes(
    client: Client,
    settings: Settings,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    tmp_path: Path,
) -> None:
    source, target = await accounts.open(1_000, shard=0), await accounts.open(0, shard=1)
    request = request_for(source, target, 600)
    transfers = TransfersClient(client, settings)

    first = WorkerProcess(settings, tmp_path)
    async with accounts.row_locked(target):  # the credit waits on the row lock
        process = await first.start_polling()
        await transfers.submit(request, wait=False)
        await accounts.until_lock_waiters(target)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(1)
        still_draining = process.returncode is None
    exit_code = await asyncio.wait_for(process.wait(), timeout=30)
    credited_by_the_first = await accounts.balance(target)

    second = await WorkerProcess(settings, tmp_path).start_polling()
    try:
        outcome = await asyncio.wait_for(transfers.submit(request), timeout=30)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), timeout=30)

    assert still_draining
    assert (exit_code, credited_by_the_first) == (0, 600)
    assert "waiting for running activities to finish" in first.log.read_text()
    assert outcome.status == TransferStatus.COMPLETED
    assert [(entry.kind, entry.replayed) for entry in outcome.entries] == [
        ("debit", False),
        ("credit", False),
    ]
