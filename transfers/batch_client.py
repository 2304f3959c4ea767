"""Batches in the Python API: `TransfersClient.submit_batch` and its kin (this mixin).

    outcome = await transfers.submit_batch(requests)  # one TransferOutcome each, and counts

A batch is one `TransferBatchWorkflow` (workflow id `batch-{batch_id}`), at most MAX_BATCH_SIZE
transfers. Without a batch id, the id is a digest of the requests in order: the same batch
submitted again joins the running one or finds the ended one, and never moves money twice (a
transfer id is also claimed on its shard, batch or not).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from shards.errors import IdempotencyConflict, RefundNotStuck, TransferNotFound
from transfers.settings import Settings
from transfers.ui_links import workflows_page
from workflows.batch import TransferBatchWorkflow
from workflows.batch_models import (
    BatchOutcome,
    BatchRequest,
    batch_id_of,
    batch_workflow_id,
    check_batch,
    one_currency_total,
    totals_line,
)
from workflows.models import TransferOutcome, TransferRequest, TransferStatus, TransferStep
from workflows.readable import Readable
from workflows.search_attributes import AMOUNT, BATCH_ID, CURRENCY, REFUND_IS_STUCK

BATCH_WORKFLOW_TYPE = "TransferBatchWorkflow"
# `find_batch` reads the input of this many recent batches at most, so many at a time.
FIND_BATCH_SCAN = 200
FIND_BATCH_IN_FLIGHT = 20

BatchHandle = WorkflowHandle[Any, BatchOutcome]
DECISION_POLL_S = 0.1  # how often a decision's sender asks where the transfer is


class BatchSummary(BaseModel):
    """One line of `list_batches`: its size, total and counts (None while it runs)."""

    model_config = ConfigDict(frozen=True)

    batch_id: str
    running: bool
    size: int | None
    amount: int | None  # the total, when the batch moves one currency
    currency: str | None
    counts: dict[str, int] | None
    started_at: datetime


class BatchMember(NamedTuple):
    """A transfer found inside a batch: which batch, what it asked, where it is."""

    batch_id: str
    request: TransferRequest
    outcome: TransferOutcome


class StuckMember(NamedTuple):
    """A batch's transfer whose refund waits for an operator, and when its batch started."""

    member: BatchMember
    started_at: datetime


class BatchClient:
    """The batch half of TransfersClient (which sets `client` and `settings`)."""

    client: Client
    settings: Settings

    async def submit_batch(
        self, requests: Sequence[TransferRequest], batch_id: str | None = None
    ) -> BatchOutcome:
        """Run `requests` as one batch and return its outcome: one per transfer, in order, and
        the counts per status. Raises `InvalidInput` for an empty batch, one above
        MAX_BATCH_SIZE or a transfer id twice (before anything starts), `IdempotencyConflict`
        when `batch_id` was used before for other transfers."""
        return await self.batch_outcome(await self.start_batch(requests, batch_id))

    async def start_batch(
        self, requests: Sequence[TransferRequest], batch_id: str | None = None
    ) -> str:
        """Start the batch (or find it, as `submit_batch` does) and return its id at once."""
        check_batch(requests)
        batch = BatchRequest(batch_id=batch_id or batch_id_of(requests), transfers=tuple(requests))
        try:
            await self.client.start_workflow(
                TransferBatchWorkflow.run,
                batch,
                id=batch_workflow_id(batch.batch_id),
                task_queue=self.settings.transfers_task_queue,
                # one workflow per batch id, ever, as per transfer id
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=Readable(totals_line(batch.transfers)),
                search_attributes=_search_attributes(batch),
                memo={"size": len(batch.transfers)},
            )
        except WorkflowAlreadyStartedError as error:
            recorded = await self._recorded_batch(self._batch_handle(batch.batch_id, error.run_id))
            if recorded != batch:
                raise IdempotencyConflict(
                    f"batch {batch.batch_id} was submitted before with other transfers; "
                    "use another batch id"
                ) from None
        return batch.batch_id

    async def batch_outcome(self, batch_id: str) -> BatchOutcome:
        """The batch's final outcome, waiting for it. A batch that failed outright (terminated)
        reports each transfer as its history left it."""
        handle = self._batch_handle(batch_id)
        try:
            return await handle.result()
        except WorkflowFailureError:
            return await handle.query(TransferBatchWorkflow.status)

    async def batch_status(self, batch_id: str) -> BatchOutcome:
        """Where each transfer of the batch is now (its status query; its result once ended)."""
        handle = self._batch_handle(batch_id)
        try:
            return await handle.query(TransferBatchWorkflow.status)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise TransferNotFound(f"no batch {batch_id}") from None
            raise

    async def batch_counts(self, batch_id: str) -> dict[str, int]:
        """How many of the batch's transfers have each status now: a small query."""
        return await self._batch_handle(batch_id).query(TransferBatchWorkflow.counts)

    async def cancel_batch(self, batch_id: str) -> bool:
        """Ask a running batch to stop; False when it had ended. What is not debited ends FAILED
        (cancelled); what is debited and not credited is fenced, then refunded."""
        handle = self._batch_handle(batch_id)
        try:
            description = await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise TransferNotFound(f"no batch {batch_id}") from None
            raise
        if description.status != WorkflowExecutionStatus.RUNNING:
            return False
        await handle.cancel()
        return True

    async def list_batches(self, limit: int = 100) -> builtins.list[BatchSummary]:
        """The most recent batches first, with their counts once ended."""
        query = f"WorkflowType = '{BATCH_WORKFLOW_TYPE}'"
        return [
            await _batch_summary(execution)
            async for execution in self.client.list_workflows(query, limit=limit)
        ]

    async def stuck_in_batches(self, limit: int = 100) -> builtins.list[StuckMember]:
        """The transfers whose refund waits in running batches (those `RefundStuck` marks),
        the most recent batches first: for `list(stuck=True)`."""
        query = (
            f"WorkflowType = '{BATCH_WORKFLOW_TYPE}' AND {REFUND_IS_STUCK.name} = true "
            "AND ExecutionStatus = 'Running'"
        )
        stuck: builtins.list[StuckMember] = []
        async for execution in self.client.list_workflows(query, limit=limit):
            batch_id = execution.id.removeprefix("batch-")
            batch = await self._recorded_batch(self._batch_handle(batch_id, execution.run_id))
            requests = {t.transfer_id: t for t in batch.transfers} if batch is not None else {}
            for transfer in (await self.batch_status(batch_id)).transfers:
                request = requests.get(transfer.transfer_id)
                if transfer.step == TransferStep.REFUND_STUCK and request is not None:
                    member = BatchMember(batch_id, request, transfer)
                    stuck.append(StuckMember(member, execution.start_time))
        return stuck[:limit]

    async def find_batch(self, transfer_id: str, scan: int = FIND_BATCH_SCAN) -> BatchMember | None:
        """The batch holding `transfer_id`, among the `scan` most recent batches (their inputs
        are read, FIND_BATCH_IN_FLIGHT at a time, newest first); None if none of them holds it.

        Where several hold it, the newest whose transfer was not refused at its claim: a
        request for the id that another request owns (a later batch's) does not hide the
        batch of the request that owns it.
        """
        query = f"WorkflowType = '{BATCH_WORKFLOW_TYPE}'"
        executions = [e async for e in self.client.list_workflows(query, limit=scan)]
        # Newest first by start, whatever order visibility answers in (it may list the running
        # first): the same id then always names the same batch, ended or not, so a second
        # operator's decision meets the first one's end instead of another run of the request.
        executions.sort(key=lambda execution: execution.start_time, reverse=True)
        gate = asyncio.Semaphore(FIND_BATCH_IN_FLIGHT)

        async def member(execution: WorkflowExecution) -> TransferRequest | None:
            async with gate:
                handle = self._batch_handle(execution.id.removeprefix("batch-"), execution.run_id)
                batch = await self._recorded_batch(handle)
            held = batch.transfers if batch is not None else ()
            return next((t for t in held if t.transfer_id == transfer_id), None)

        found = await asyncio.gather(*(member(execution) for execution in executions))
        refused: BatchMember | None = None
        for execution, request in zip(executions, found, strict=True):
            if request is None:
                continue
            batch_id = execution.id.removeprefix("batch-")
            outcome = await self.batch_status(batch_id)
            transfer = next(t for t in outcome.transfers if t.transfer_id == transfer_id)
            held = BatchMember(batch_id, request, transfer)
            if not refused_at_claim(transfer):
                return held
            refused = refused or held
        return refused

    async def batch_owning(self, transfer_id: str, run: TransferOutcome) -> BatchMember | None:
        """Where a transfer's own workflow (`run`) was refused at its claim, the batch transfer
        whose request owns the id (found among the most recent batches, past its claim)."""
        if not refused_at_claim(run):
            return None
        member = await self.find_batch(transfer_id)
        if member is None or refused_at_claim(member.outcome):
            return None
        if member.outcome.step in (TransferStep.STARTED, TransferStep.ROUTING):
            return None  # not claimed yet: it may be refused too
        return member

    async def decide_in_batch(
        self,
        member: BatchMember,
        update: Callable[[BatchHandle], Awaitable[None]],
        *,
        wait: bool,
    ) -> TransferOutcome:
        """Send an operator's Update about the stuck refund of a batch's transfer (its refusal
        as `RefundNotStuck`); with `wait`, the transfer once it has ended or its refund is
        refused again, else where it is right after the Update."""
        transfer_id, handle = member.request.transfer_id, self._batch_handle(member.batch_id)
        not_stuck = RefundNotStuck(
            f"transfer {transfer_id} in batch {member.batch_id} is {member.outcome.status} "
            f"({member.outcome.step}): no refund is stuck"
        )
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            raise not_stuck
        try:
            await update(handle)
        except WorkflowUpdateFailedError as failure:
            if not isinstance(failure.cause, ApplicationError):
                raise
            message = f"transfer {transfer_id} in batch {member.batch_id}: {failure.cause.message}"
            raise RefundNotStuck(message) from None
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:  # it closed after the describe
                raise
            raise not_stuck from None
        return await until_decided(
            lambda: self._member_outcome(member.batch_id, transfer_id), wait=wait
        )

    async def _member_outcome(self, batch_id: str, transfer_id: str) -> TransferOutcome:
        outcome = await self.batch_status(batch_id)
        return next(t for t in outcome.transfers if t.transfer_id == transfer_id)

    def batch_ui_link(self, batch_id: str) -> str:
        """The batch's page in the Temporal Web UI."""
        page = workflows_page(self.settings.ui_url, self.settings.temporal_namespace)
        return f"{page}/{batch_workflow_id(batch_id)}"

    async def _recorded_batch(self, handle: BatchHandle) -> BatchRequest | None:
        """The input the batch was started with (its first history event); None if invalid."""
        async for event in handle.fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            try:
                [recorded] = await self.client.data_converter.decode(payloads, [BatchRequest])
            except ValidationError:
                return None
            return recorded if isinstance(recorded, BatchRequest) else None
        return None

    def _batch_handle(self, batch_id: str, run_id: str | None = None) -> BatchHandle:
        return self.client.get_workflow_handle_for(
            TransferBatchWorkflow.run, batch_workflow_id(batch_id), run_id=run_id
        )


async def until_decided(
    read: Callable[[], Awaitable[TransferOutcome]], *, wait: bool
) -> TransferOutcome:
    """Where a transfer is after an operator's decision about its stuck refund: with `wait`,
    once it has ended or its refund is refused again (a retried refund may be: then it waits
    again), else right away."""
    while True:
        outcome = await read()
        if not wait or outcome.status.final or outcome.step == TransferStep.REFUND_STUCK:
            return outcome
        await asyncio.sleep(DECISION_POLL_S)


def refused_at_claim(outcome: TransferOutcome) -> bool:
    """The run's request was refused at its first step: another request owns the transfer id
    (its claim, on the id's shard), so this run does not speak for the id's money."""
    error = outcome.error
    return (
        outcome.status == TransferStatus.FAILED
        and outcome.step == TransferStep.REFUSED
        and error is not None
        and error.type == IdempotencyConflict.__name__
    )


def _search_attributes(batch: BatchRequest) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [SearchAttributePair(BATCH_ID, batch.batch_id)]
    total = one_currency_total(batch.transfers)
    if total is not None:
        pairs += [SearchAttributePair(AMOUNT, total[0]), SearchAttributePair(CURRENCY, total[1])]
    return TypedSearchAttributes(pairs)


async def _batch_summary(execution: WorkflowExecution) -> BatchSummary:
    attributes = execution.typed_search_attributes
    memo = await execution.memo()
    return BatchSummary(
        batch_id=attributes.get(BATCH_ID) or execution.id.removeprefix("batch-"),
        running=execution.status == WorkflowExecutionStatus.RUNNING,
        size=memo.get("size"),
        amount=attributes.get(AMOUNT),
        currency=attributes.get(CURRENCY),
        counts=memo.get("counts"),
        started_at=execution.start_time,
    )
