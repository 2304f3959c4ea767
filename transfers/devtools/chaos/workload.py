"""Chaos traffic: a few clients submit transfers one after another through the Python API, and
carry pending ones through post, void or expiry; a few others submit batches of transfers
(`start_batch`, then `batch_outcome`); all ride out faults by retrying.

A client waits up to CLIENT_WAIT_S for a transfer or a batch, then moves on to the next, like a
real caller that times out: it is left to `settle`, which waits for every final state once the
traffic stops. So a paused shard delays transfers instead of stalling the whole run.

Each transfer of a batch is a TransferRecord like a single one (with its `batch_id`), so that the
checks on money and outcomes hold it to the same account.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from shards.errors import BusinessError, HoldExpired, HoldNotActive
from transfers.client import TemporalUnavailable, TransfersClient
from transfers.devtools.chaos.mix import PlannedBatch, PlannedTransfer, TransferKind, TransferMix
from workflows.batch_models import BatchOutcome, batch_id_of
from workflows.models import PendingTransferRequest, TransferOutcome, TransferRequest

T = TypeVar("T")

CLIENT_WAIT_S = 5.0
RETRY_PAUSE_S = 0.5
SETTLE_CONCURRENCY = 32
# Temporal restarting, or a worker gone while an Update waits: the same call is safe again.
TRANSIENT = (RPCError, TemporalUnavailable, WorkflowUpdateRPCTimeoutOrCancelledError)


@dataclass
class TransferRecord:
    """A submitted transfer and, once known, its final outcome."""

    planned: PlannedTransfer
    outcome: TransferOutcome | None = None
    held: bool = False  # a pending transfer whose workflow is known to have started
    last_error: str | None = None
    # what else may have changed its end: "cancelled", "frozen" (one of its accounts, a while)
    disturbed_by: set[str] = field(default_factory=set)
    duplicated: bool = False  # in a duplicate burst: the same-id fault leaves it alone
    other_runs: int = 0  # runs of its workflow id started with other fields (by the fault)
    batch_id: str | None = None  # submitted in this batch, not alone

    @property
    def request(self) -> TransferRequest:
        return self.planned.request


@dataclass
class BatchRecord:
    """A submitted batch: its id (given, or derived from its content), its final outcome once
    known, and the outcomes its resubmissions got (each must be that outcome)."""

    planned: PlannedBatch
    batch_id: str
    outcome: BatchOutcome | None = None
    last_error: str | None = None
    started: bool = False  # known to have started (a start answered)
    cancelled: bool = False  # while it ran
    echoes: list[BatchOutcome] = field(default_factory=list)

    @property
    def requests(self) -> tuple[TransferRequest, ...]:
        return tuple(planned.request for planned in self.planned.transfers)


@dataclass
class Workload:
    """The clients, everything they submitted, and how often Temporal made them retry."""

    client: TransfersClient
    mix: TransferMix
    concurrency: int
    batch_concurrency: int = 0
    records: dict[str, TransferRecord] = field(default_factory=dict)  # single and batched
    batches: dict[str, BatchRecord] = field(default_factory=dict)
    client_retries: int = 0
    # (transfer id, error) for errors that no fault explains
    anomalies: list[tuple[str, str]] = field(default_factory=list)
    frozen: set[str] = field(default_factory=set)  # accounts a freeze-flip has not thawed yet

    def disturb(self, account_ids: set[str], how: str) -> None:
        """Mark every transfer not known to have ended that touches `account_ids`."""
        for record in self.records.values():
            if record.outcome is None and _accounts(record.request) & account_ids:
                record.disturbed_by.add(how)

    async def run(self, seconds: float) -> None:
        """Submit transfers for `seconds`, `concurrency` at a time, and `batch_concurrency`
        batches at a time beside them."""
        until = asyncio.get_running_loop().time() + seconds
        await asyncio.gather(
            *(self._client(until) for _ in range(self.concurrency)),
            *(self._batch_client(until) for _ in range(self.batch_concurrency)),
        )

    async def settle(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) for the final state of every transfer not yet known."""
        gate = asyncio.Semaphore(SETTLE_CONCURRENCY)

        async def settle_one(record: TransferRecord) -> None:
            async with gate:
                await self._follow(record, self._join(record.request))

        async def settle_batch(batch: BatchRecord) -> None:
            async with gate:
                await self._follow_batch(batch, self.run_batch(batch))

        unsettled = [
            record
            for record in self.records.values()
            if record.outcome is None and record.batch_id is None
        ]
        open_batches = [batch for batch in self.batches.values() if batch.outcome is None]
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*map(settle_one, unsettled), *map(settle_batch, open_batches))
        except TimeoutError:
            pass  # the final-state check names every transfer still open

    def singles(self) -> list[TransferRecord]:
        """The transfers submitted alone (the faults on one transfer id pick among them)."""
        return [record for record in self.records.values() if record.batch_id is None]

    @property
    def by_status(self) -> Counter[str]:
        return Counter(
            record.outcome.status.value for record in self.records.values() if record.outcome
        )

    @property
    def disturbed(self) -> Counter[str]:
        """Transfers "cancelled", with an account "frozen" meanwhile, with their id "reused"."""
        records = self.records.values()
        counts = Counter(how for record in records for how in record.disturbed_by)
        counts["reused"] = sum(bool(record.other_runs) for record in records)
        return counts

    async def retrying(
        self, record: TransferRecord | BatchRecord, call: Callable[[], Awaitable[T]]
    ) -> T:
        """`call` until it answers; Temporal being down is retried, anything else raised."""
        while True:
            try:
                return await call()
            except TRANSIENT as error:
                record.last_error = f"{type(error).__name__}: {error}"
                self.client_retries += 1
                await asyncio.sleep(RETRY_PAUSE_S)

    def start_again(self, request: TransferRequest) -> Awaitable[TransferOutcome]:
        """Submit `request` without waiting for its end: HELD for a pending transfer."""
        if isinstance(request, PendingTransferRequest):
            return self.client.submit_pending(request)
        return self.client.submit(request, wait=False)

    async def _client(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < until:
            planned = self.mix.next()
            record = self.records[planned.request.transfer_id] = TransferRecord(planned)
            if _accounts(record.request) & self.frozen:
                record.disturbed_by.add("frozen")
            try:
                async with asyncio.timeout(CLIENT_WAIT_S):
                    await self._follow(record, self._carry_out(record))
            except TimeoutError:
                pass  # left to settle()

    async def run_batch(self, batch: BatchRecord) -> BatchOutcome:
        """Start the batch (again: its id makes it the same batch) and wait for its outcome."""
        given_id = batch.planned.batch_id  # None: the client derives the same id again
        await self.retrying(batch, lambda: self.client.start_batch(batch.requests, given_id))
        batch.started = True
        return await self.retrying(batch, lambda: self.client.batch_outcome(batch.batch_id))

    async def _batch_client(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < until:
            batch = self._record_batch(self.mix.next_batch())
            try:
                async with asyncio.timeout(CLIENT_WAIT_S):
                    await self._follow_batch(batch, self.run_batch(batch))
            except TimeoutError:
                pass  # left to settle()

    def _record_batch(self, planned: PlannedBatch) -> BatchRecord:
        requests = [member.request for member in planned.transfers]
        batch = BatchRecord(planned, planned.batch_id or batch_id_of(requests))
        self.batches[batch.batch_id] = batch
        for member in planned.transfers:
            record = self.records[member.request.transfer_id] = TransferRecord(
                member, batch_id=batch.batch_id
            )
            if _accounts(record.request) & self.frozen:
                record.disturbed_by.add("frozen")
        return batch

    async def _follow_batch(self, batch: BatchRecord, flow: Awaitable[BatchOutcome]) -> None:
        """The batch's outcome, and each transfer's in its record."""
        try:
            batch.outcome = await flow
        except Exception as error:  # no fault explains it: reported as a violation
            self.anomalies.append((f"batch {batch.batch_id}", f"{type(error).__name__}: {error}"))
            return
        for outcome in batch.outcome.transfers:
            self.records[outcome.transfer_id].outcome = outcome

    async def _follow(self, record: TransferRecord, flow: Awaitable[TransferOutcome]) -> None:
        try:
            record.outcome = await flow
        except Exception as error:  # no fault explains it: reported as a violation
            self.anomalies.append((record.request.transfer_id, f"{type(error).__name__}: {error}"))

    async def _carry_out(self, record: TransferRecord) -> TransferOutcome:
        planned, request = record.planned, record.request
        if not planned.kind.pending:
            return await self._join(request)
        held = await self.retrying(record, lambda: self.start_again(request))
        record.held = True
        if held.status.final or planned.kind == TransferKind.PENDING_EXPIRE:
            return await self._join(request)
        try:
            return await self.retrying(record, lambda: self._decide(planned))
        except (HoldNotActive, HoldExpired):
            # A retried Update whose first try was accepted, a hold that lapsed or was voided
            # by a cancellation first: the final outcome says which.
            return await self._join(request)
        except BusinessError:
            if not record.disturbed_by:
                raise
            return await self._join(request)  # a frozen source refuses the capture

    def _decide(self, planned: PlannedTransfer) -> Awaitable[TransferOutcome]:
        transfer_id = planned.request.transfer_id
        if planned.kind == TransferKind.PENDING_VOID:
            return self.client.void(transfer_id)
        return self.client.post(transfer_id, planned.post_amount)

    async def _join(self, request: TransferRequest) -> TransferOutcome:
        """Submit again (the id makes it the same transfer) and wait for the final outcome."""

        async def join() -> TransferOutcome:
            if isinstance(request, PendingTransferRequest):
                return await self.client.submit_pending(request, wait=True)
            return await self.client.submit(request)

        return await self.retrying(self.records[request.transfer_id], join)


def _accounts(request: TransferRequest) -> set[str]:
    return {request.source_account_id, request.target_account_id}
