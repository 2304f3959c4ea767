"""Real crashes: a worker process exits right after a step's shard transaction commits, before
its workflow task completes (TRANSFERS_CRASH_AFTER_COMMIT); then something changes; then another
worker finishes the transfer from a history without that step, as the shards' entries say.

Issue #11 cases 1 to 4 with the worker really gone (tests/workflows/test_lost_tasks.py and
tests/workflows/test_pending_lost_tasks.py commit the lost steps by hand instead).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest
from sqlalchemy import select
from temporalio.client import Client

from activities.ledger import CRASH_AFTER_COMMIT, CRASH_EXIT_CODE
from shards.errors import AccountNotFound, HoldNotActive
from shards.schema import AccountStatus, transfer_claims
from tests.ops.test_worker_process import WorkerProcess
from tests.support.lost_tasks import assert_settled, entries_of
from tests.support.workers import (
    Accounts,
    RecordingActivities,
    error_type,
    running_worker,
    step_events,
    steps_in_history,
)
from transfers.client import TransfersClient, workflow_id
from transfers.settings import Settings
from workflows.models import PendingTransferRequest, TransferRequest, TransferStatus

AMOUNT = 400
OPENING = 1_000


class CrashingWorker:
    """`python worker.py` that exits right after `step` commits, polling while in the block."""

    def __init__(self, settings: Settings, directory: Path, step: str) -> None:
        self.step = step
        self.worker = WorkerProcess(settings, directory, **{CRASH_AFTER_COMMIT: step})

    async def __aenter__(self) -> CrashingWorker:
        self.process = await self.worker.start_polling()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.returncode is None:  # the test failed before the crash
            self.process.kill()
            await self.process.wait()

    async def crashed(self) -> None:
        """Wait for the exit: the switch's code, right after the step's commit."""
        exit_code = await asyncio.wait_for(self.process.wait(), timeout=30)
        log = self.worker.log.read_text()
        assert exit_code == CRASH_EXIT_CODE, log
        assert f"{CRASH_AFTER_COMMIT}={self.step}: exiting after the commit" in log


@dataclass(frozen=True)
class Crash:
    step: str  # the step whose commit the worker does not survive
    interference: str  # cancel, freeze target or unfreeze target
    status: TransferStatus
    error: str | None  # the outcome's error type
    entries: tuple[tuple[str, bool], ...]  # (kind, marker) of every entry at the end, sorted
    target_frozen_first: bool = False  # while the crashing worker ran: its credit was refused


REFUNDED = (("credit", True), ("debit", False), ("refund", False))  # the credit fenced out
CREDITED = (("credit", False), ("debit", False))

CRASHES = {
    # issue #11 case 1: FAILED "cancelled before the debit" with the debit kept (400 lost)
    "debit, cancel": Crash("debit", "cancel", TransferStatus.COMPENSATED, "Cancelled", REFUNDED),
    # issue #11 case 2: COMPENSATED with the credit kept (400 made)
    "credit, cancel": Crash("credit", "cancel", TransferStatus.COMPLETED, None, CREDITED),
    "debit, freeze target": Crash(
        "debit", "freeze target", TransferStatus.COMPENSATED, "AccountNotOpen", REFUNDED
    ),
    # issue #11 case 3: the re-run's debit replayed over the refund, then credited (400 made);
    # now that debit is refused (AlreadyCompensated) and the transfer ends as it had
    "refund, unfreeze target": Crash(
        "refund",
        "unfreeze target",
        TransferStatus.COMPENSATED,
        "AlreadyCompensated",
        REFUNDED,
        target_frozen_first=True,
    ),
}


@pytest.mark.parametrize("name", list(CRASHES))
async def test_a_transfer_whose_worker_died_after_a_commit_ends_as_its_entries_say(
    name: str,
    client: Client,
    settings: Settings,
    activities: RecordingActivities,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    tmp_path: Path,
) -> None:
    crash = CRASHES[name]
    source = await accounts.open(OPENING, shard=0)
    target = await accounts.open(0, shard=1)
    if crash.target_frozen_first:
        await accounts.freeze(target)
    request = request_for(source, target, AMOUNT)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))

    async with CrashingWorker(settings, tmp_path, crash.step) as crashing:
        await transfers.start(request)
        await crashing.crashed()
    committed = await entries_of(accounts.ledger, request.transfer_id)
    assert (crash.step, False) in [(row.kind, row.marker) for row in committed], committed
    assert await steps_in_history(handle) == []  # the whole workflow task was lost

    await _interfere(crash.interference, transfers, accounts, request)
    async with running_worker(client, settings, activities):
        outcome = await asyncio.wait_for(transfers.submit(request), timeout=60)

    assert (outcome.status, error_type(outcome)) == (crash.status, crash.error), outcome
    rows = await entries_of(accounts.ledger, request.transfer_id)
    assert sorted((row.kind, row.marker) for row in rows) == list(crash.entries)
    moved = AMOUNT if crash.status == TransferStatus.COMPLETED else 0
    await assert_settled(
        accounts.ledger,
        outcome,
        opening={source: OPENING, target: 0},
        balances={source: OPENING - moved, target: moved},
    )


@pytest.mark.parametrize("interference", ["accounts opened", "accounts opened, cancelled"])
async def test_a_transfer_whose_worker_died_after_recording_its_end_stays_failed(
    interference: str,
    client: Client,
    settings: Settings,
    activities: RecordingActivities,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    tmp_path: Path,
) -> None:
    """end_claim: the worker dies right after the claim records the FAILED end of a transfer
    whose source did not exist (its refund marker written without a row, 0006). The accounts are
    opened, the source funded (and the transfer cancelled) before another worker runs it again
    from a history without any step: it ends FAILED with the first run's error, nothing moves."""
    source, target = accounts.id_on(0), accounts.id_on(1)
    request = request_for(source, target, AMOUNT)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))

    async with CrashingWorker(settings, tmp_path, "end_claim") as crashing:
        await transfers.start(request)
        await crashing.crashed()
    assert await steps_in_history(handle) == []  # the whole workflow task was lost
    async with accounts.ledger.router.shard_for(request.transfer_id).begin() as connection:
        ended = await connection.scalar(
            select(transfer_claims.c.ended_code).where(
                transfer_claims.c.transfer_id == request.transfer_id
            )
        )
    assert ended == AccountNotFound.__name__  # the end the lost task recorded

    await accounts.ledger.open_account(source, "USD")
    await accounts.deposit(source, OPENING)
    await accounts.ledger.open_account(target, "USD")
    if interference.endswith("cancelled"):
        assert await transfers.cancel(request.transfer_id) is True
    async with running_worker(client, settings, activities):
        outcome = await asyncio.wait_for(transfers.submit(request), timeout=60)

    assert (outcome.status, error_type(outcome)) == (TransferStatus.FAILED, "AccountNotFound")
    await assert_settled(
        accounts.ledger,
        outcome,
        opening={source: OPENING, target: 0},
        balances={source: OPENING, target: 0},
    )


async def _interfere(
    interference: str, transfers: TransfersClient, accounts: Accounts, request: TransferRequest
) -> None:
    """While no worker runs: the workflow is running, its lost task not yet timed out."""
    target = request.target_account_id
    if interference == "cancel":
        assert await transfers.cancel(request.transfer_id) is True
    elif interference == "freeze target":
        await accounts.freeze(target)
    else:
        assert interference == "unfreeze target"
        await accounts.ledger.set_status(target, AccountStatus.OPEN)


async def test_a_post_whose_worker_died_after_the_capture_completes_and_refuses_a_void(
    client: Client,
    settings: Settings,
    activities: RecordingActivities,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    tmp_path: Path,
) -> None:
    """Issue #11 case 4: a void (or the expiry) after a lost capture ended EXPIRED or VOIDED,
    400 taken from the source and never credited. A post's capture is a regular activity now,
    scheduled with the Update's acceptance: the void is refused (the post decided), and the
    capture's attempt, lost with its worker, is retried after its start-to-close (30 s)."""
    source = await accounts.open(OPENING, shard=0)
    target = await accounts.open(0, shard=1)
    transfer = request_for(source, target, AMOUNT)
    request = PendingTransferRequest(**transfer.model_dump(), timeout_s=300)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))

    async with CrashingWorker(settings, tmp_path, "capture") as crashing:
        assert (await transfers.submit_pending(request)).status == TransferStatus.HELD
        post = asyncio.create_task(transfers.post(request.transfer_id))  # answered at the end
        await crashing.crashed()
    try:
        committed = await entries_of(accounts.ledger, request.transfer_id)
        assert sorted((row.kind, row.marker) for row in committed) == [
            ("capture", False),
            ("hold", False),
        ]
        events = await step_events(handle)
        assert events[-2:] == ["update accepted post", "capture scheduled"], events

        async with running_worker(client, settings, activities):
            with pytest.raises(HoldNotActive, match="is posted"):
                await transfers.void(request.transfer_id)
            # the void met the lost capture: its retry comes after its start-to-close
            assert "capture done" not in await step_events(handle)
            posted = await asyncio.wait_for(post, timeout=60)
            outcome = await transfers.submit_pending(request, wait=True)
    finally:
        post.cancel()

    assert outcome == posted
    assert outcome.status == TransferStatus.COMPLETED, outcome
    rows = await entries_of(accounts.ledger, request.transfer_id)
    assert sorted((row.kind, row.marker) for row in rows) == [
        ("capture", False),
        ("credit", False),
        ("hold", False),
    ]
    await assert_settled(
        accounts.ledger,
        outcome,
        opening={source: OPENING, target: 0},
        balances={source: OPENING - AMOUNT, target: AMOUNT},
    )
