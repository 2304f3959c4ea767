"""A real worker process dies in the middle of a batch of 300 transfers, some of them refused,
after a batched step committed and before its workflow task was recorded; a new worker finishes
the batch from a history without those steps. Every transfer ends once, as its entries say, and
every balance recomputed from the outcomes is the shards'.

Two deaths by TRANSFERS_CRASH_AFTER_COMMIT (right after the debits or the credits committed on
every shard), and one SIGKILL while one shard's credits wait for a locked row and the other
shards' credits have committed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.ops.test_worker_process import WorkerProcess
from tests.support.batch_settlement import assert_transfers_settled, entries_by_transfer
from tests.support.workers import Accounts, RecordingActivities, running_worker, steps_in_history
from tests.workflows.test_crash_after_commit import CrashingWorker
from transfers.client import TransfersClient
from transfers.settings import Settings
from workflows.batch_models import batch_workflow_id
from workflows.models import TransferRequest

pytestmark = pytest.mark.lost_tasks

SIZE = 300
SHARDS = 3
FUNDED, POOR = 1_500, 40


@dataclass(frozen=True)
class Batch:
    requests: list[TransferRequest]
    held_before: dict[str, int]  # every account's balance before the batch
    busy_target: str  # a target on the last shard


async def _batch(accounts: Accounts, request_for: Callable[..., TransferRequest]) -> Batch:
    """300 transfers out of nine funded and three poor sources (some run short: refused debits)
    into nine targets, two frozen ones (refused credits: refunded) and an unknown one."""
    chooser = random.Random(16)
    sources = [await accounts.open(FUNDED, shard=n % SHARDS) for n in range(9)]
    poor = [await accounts.open(POOR, shard=n) for n in range(SHARDS)]
    targets = [await accounts.open(shard=n % SHARDS) for n in range(9)]
    frozen = [await accounts.open(shard=n) for n in (1, 2)]
    for account in frozen:
        await accounts.freeze(account)
    unknown = accounts.new_id("acc-unknown")
    requests = []
    for n in range(SIZE):
        source = chooser.choice(poor if n % 10 == 0 else sources)
        target = frozen[n % 2] if n % 25 == 0 else unknown if n % 60 == 1 else None
        requests.append(
            request_for(source, target or chooser.choice(targets), chooser.randint(1, 80))
        )
    held = dict.fromkeys(sources, FUNDED) | dict.fromkeys(poor, POOR)
    return Batch(requests, held | dict.fromkeys(targets + frozen, 0), targets[SHARDS - 1])


async def _crash_after(
    step: str, settings: Settings, tmp_path: Path, start: Callable[[], Awaitable[None]]
) -> None:
    async with CrashingWorker(settings, tmp_path, step) as crashing:
        await start()
        await crashing.crashed()


async def _credits_on(accounts: Accounts, batch: Batch) -> dict[str, int]:
    """How many credits have committed into each target."""
    rows = await entries_by_transfer(accounts.ledger, [r.transfer_id for r in batch.requests])
    credited: dict[str, int] = {}
    for entries in rows.values():
        for row in entries:
            if row.kind == "credit" and not row.marker:
                credited[row.account_id] = credited.get(row.account_id, 0) + 1
    return credited


async def _shards_credited(accounts: Accounts, batch: Batch) -> set[int]:
    router = accounts.ledger.router
    return {router.index_for(account) for account in await _credits_on(accounts, batch)}


@pytest.mark.parametrize("death", ["after the debits", "after the credits", "sigkill mid-credits"])
async def test_a_batch_whose_worker_died_is_finished_by_another_as_its_entries_say(
    death: str,
    client: Client,
    settings: Settings,
    activities: RecordingActivities,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    tmp_path: Path,
) -> None:
    batch = await _batch(accounts, request_for)
    batch_id = accounts.new_id("b-killed")
    handle = client.get_workflow_handle(batch_workflow_id(batch_id))

    async def start() -> None:
        await transfers.start_batch(batch.requests, batch_id)

    if death == "after the debits":
        await _crash_after("debit_batch", settings, tmp_path, start)
        assert await _credits_on(accounts, batch) == {}
    elif death == "after the credits":
        await _crash_after("credit_batch", settings, tmp_path, start)
        assert batch.busy_target in await _credits_on(accounts, batch)
    else:
        worker = WorkerProcess(settings, tmp_path)
        process = await worker.start_polling()
        try:
            async with accounts.row_locked(batch.busy_target):
                await start()
                await accounts.until_lock_waiters(batch.busy_target)
                async with asyncio.timeout(15):  # the other shards' credits commit meanwhile
                    while len(await _shards_credited(accounts, batch)) < SHARDS - 1:  # noqa: ASYNC110
                        await asyncio.sleep(0.1)
                process.kill()
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        credited = await _credits_on(accounts, batch)
        assert batch.busy_target not in credited  # a shard's credits never committed
    assert await steps_in_history(handle) == []  # the workflow task that ran them is lost

    async with running_worker(client, settings, activities):  # once the lost task times out
        outcome = await asyncio.wait_for(transfers.batch_outcome(batch_id), timeout=60)

    assert outcome.final
    assert all(outcome.counts[status] > 0 for status in ("COMPLETED", "FAILED", "COMPENSATED"))
    await assert_transfers_settled(
        accounts.ledger, batch.requests, outcome.transfers, held_before=batch.held_before
    )
