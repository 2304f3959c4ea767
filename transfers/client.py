"""The Python API for transfers: submit, follow, list and cancel them through Temporal.

    settings = load_settings()
    transfers = await TransfersClient.connect(settings)
    outcome = await transfers.submit(TransferRequest(transfer_id="t-1", source_account_id="acc-1",
                                                     target_account_id="acc-2", amount=1234,
                                                     currency="USD"))

A pending transfer holds the amount on the source until `post` (capture and credit) or `void`,
or until its timeout lapses:

    held = await transfers.submit_pending(PendingTransferRequest(..., timeout_s=600))
    outcome = await transfers.post("t-1", amount=1000)  # or transfers.void("t-1")

Any other Temporal client (the `temporal` CLI, another language's SDK) can start a transfer too:
workflow type `TransferWorkflow`, workflow id `transfer-{transfer_id}`, task queue
`TRANSFERS_TASK_QUEUE` (default `transfers`), and one JSON input, amounts in minor units:
`{"transfer_id": "t-1", "source_account_id": "acc-1", "target_account_id": "acc-2",
"amount": 1234, "currency": "USD", "memo": null}`. The workflow validates it again.

Every refusal and outage it raises is a `TransfersError` (the one tree, drawn in shards.errors):
`BusinessError` when retrying cannot help, `InfrastructureError` when it may.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
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
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    TerminatedError,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import (
    TimeoutError as TemporalTimeoutError,
)
from temporalio.service import RPCError, RPCStatusCode

from shards.errors import BUSINESS_ERRORS, HoldExpired, HoldNotActive, IdempotencyConflict
from shards.errors import RefundNotStuck as RefundNotStuck  # re-exported: the API's errors
from shards.errors import TemporalUnavailable as TemporalUnavailable
from shards.errors import TransferNotFound as TransferNotFound
from shards.errors import TransfersError as TransfersError
from shards.money import format_amount
from transfers.batch_client import BatchClient, BatchMember, until_decided
from transfers.settings import Settings
from transfers.temporal_connection import CONNECT_WAIT_S, connect_temporal
from transfers.ui_links import workflows_page
from workflows.batch import TransferBatchWorkflow
from workflows.models import (
    PendingTransferRequest,
    TransferError,
    TransferOutcome,
    TransferRequest,
    TransferStatus,
    check_note,
)
from workflows.pending import PendingTransferWorkflow
from workflows.readable import Readable
from workflows.search_attributes import (
    AMOUNT,
    CURRENCY,
    REFUND_IS_STUCK,
    SOURCE_ACCOUNT_ID,
    TARGET_ACCOUNT_ID,
    TRANSFER_STATUS,
)
from workflows.transfer import TransferWorkflow

WORKFLOW_TYPE = "TransferWorkflow"
PENDING_WORKFLOW_TYPE = "PendingTransferWorkflow"
# A running transfer answers its status query from a worker; with none polling, give up and
# report what the search attributes say.
QUERY_TIMEOUT = timedelta(seconds=10)
HOLD_POLL_S = 0.1  # how often submit_pending asks whether the hold is placed
ENDED_DESCRIBES_IN_FLIGHT = 20  # `ended` asks about many transfers without flooding the server

Handle = WorkflowHandle[Any, TransferOutcome]


class TransferSummary(BaseModel):
    """One line of `list`: what the search attributes of a transfer say."""

    model_config = ConfigDict(frozen=True)

    transfer_id: str
    status: TransferStatus
    source: str
    target: str
    amount: int
    currency: str
    started_at: datetime


def _member_summary(member: BatchMember, started_at: datetime) -> TransferSummary:
    request = member.request
    return TransferSummary(
        transfer_id=request.transfer_id,
        status=member.outcome.status,
        source=request.source_account_id,
        target=request.target_account_id,
        amount=request.amount,
        currency=request.currency,
        started_at=started_at,
    )


def workflow_id(transfer_id: str) -> str:
    """The workflow id of a transfer: one workflow per transfer id, ever."""
    return f"transfer-{transfer_id}"


class TransfersClient(BatchClient):
    """Submit and follow transfers, one by one or in batches (`submit_batch`, see
    transfers.batch_client); the API that the `transfers` CLI uses."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    @classmethod
    async def connect(
        cls, settings: Settings, *, wait_s: float = CONNECT_WAIT_S
    ) -> TransfersClient:
        """Connect to the Temporal server of `settings`; `TemporalUnavailable` if unreachable."""
        return cls(await connect_temporal(settings, wait_s=wait_s), settings)

    async def submit(self, request: TransferRequest, *, wait: bool = True) -> TransferOutcome:
        """Start the transfer, or find it if its id was submitted before with the same fields.

        Raises `IdempotencyConflict` when the id was used before with other fields.
        With `wait`, returns the final outcome; without, the current status.
        """
        handle = await self._start(request)
        if wait:
            return await _final_outcome(handle, request.transfer_id)
        return await self.status(request.transfer_id)

    async def submit_pending(
        self, request: PendingTransferRequest, *, wait: bool = False
    ) -> TransferOutcome:
        """Start a pending transfer, or find it (same rules as `submit`).

        Returns once the hold is placed (HELD) or refused (FAILED); with `wait`, the final outcome
        after a post, a void or the hold's expiry. Without a worker, it waits for one.
        """
        handle = await self._start(request)
        if wait:
            return await _final_outcome(handle, request.transfer_id)
        while True:
            outcome = await self.status(request.transfer_id)
            if outcome.status == TransferStatus.HELD or outcome.status.final:
                return outcome
            await asyncio.sleep(HOLD_POLL_S)

    async def post(self, transfer_id: str, amount: int | None = None) -> TransferOutcome:
        """Capture the hold (or `amount` of it, releasing the rest) and credit the target.

        Returns the final outcome: COMPLETED, or COMPENSATED when the credit was refused. Raises
        the shard's error when the post is refused: `HoldExpired`, `HoldNotActive` (not HELD: a
        hold resolves once), `InvalidAmount` (0, or above the hold).
        """
        return await self._resolve_hold(
            transfer_id, lambda h: h.execute_update(PendingTransferWorkflow.post, amount)
        )

    async def void(self, transfer_id: str) -> TransferOutcome:
        """Release the hold: VOIDED. Raises `HoldNotActive` or `HoldExpired` when not HELD."""
        return await self._resolve_hold(
            transfer_id, lambda h: h.execute_update(PendingTransferWorkflow.void)
        )

    async def status(self, transfer_id: str) -> TransferOutcome:
        """Where a transfer is: its status query while running, its result once closed.

        A workflow of the id whose request was refused at its claim does not speak for the id:
        the batch transfer whose request owns it is reported instead (see `locate`).
        """
        run = await self._run_status(transfer_id)
        member = await self.batch_owning(transfer_id, run)
        return run if member is None else member.outcome

    async def locate(self, transfer_id: str) -> TransferOutcome | BatchMember:
        """The transfer as `status` reports it, or the batch transfer (`BatchMember`, which
        says which batch) where the id has no workflow of its own or that one was refused at
        its claim (the newest batch holding it, or a running batch where its refund is stuck);
        `TransferNotFound` if neither is found."""
        try:
            run = await self._run_status(transfer_id)
        except TransferNotFound:
            member = await self.find_batch(transfer_id) or await self._stuck_member(transfer_id)
            if member is None:
                raise
            return member
        return await self.batch_owning(transfer_id, run) or run

    async def _stuck_member(self, transfer_id: str) -> BatchMember | None:
        """The id among the stuck transfers of running batches: a batch older than the ones
        `find_batch` scans may still wait for an operator's decision about it."""
        stuck = await self.stuck_in_batches()
        return next((s.member for s in stuck if s.member.request.transfer_id == transfer_id), None)

    async def _run_status(self, transfer_id: str) -> TransferOutcome:
        """The status of the id's own workflow (`transfer-{id}`)."""
        handle = self._handle(transfer_id)
        description = await self._describe(handle, transfer_id)
        if description.status != WorkflowExecutionStatus.RUNNING:
            return await _final_outcome(handle, transfer_id)
        try:
            return await handle.query(TransferWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as error:
            # the SDK reports its own RPC timeout as CANCELLED, the server's as DEADLINE_EXCEEDED
            if error.status not in {RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED}:
                raise
            return _outcome_from_search_attributes(transfer_id, description)

    async def summary(self, transfer_id: str) -> TransferSummary | None:
        """What the search attributes say about one transfer; None without them."""
        return _summary(await self._describe(self._handle(transfer_id), transfer_id))

    async def list(
        self, status: TransferStatus | None = None, limit: int = 100, *, stuck: bool = False
    ) -> builtins.list[TransferSummary]:
        """The most recent transfers first, optionally only those with `status`; with `stuck`,
        only those whose refund waits for an operator (`retry_refund` or `resolve`), then
        those of batches."""
        query = f"WorkflowType IN ('{WORKFLOW_TYPE}', '{PENDING_WORKFLOW_TYPE}')"
        if status is not None:
            query += f" AND {TRANSFER_STATUS.name} = '{TransferStatus(status)}'"
        if stuck:
            query += f" AND {REFUND_IS_STUCK.name} = true AND ExecutionStatus = 'Running'"
        summaries = []
        async for execution in self.client.list_workflows(query, limit=limit):
            summary = _summary(execution)
            if summary is not None:
                summaries.append(summary)
        if stuck and len(summaries) < limit:
            in_batches = await self.stuck_in_batches(limit - len(summaries))
            summaries += [_member_summary(*stuck_member) for stuck_member in in_batches]
        return summaries

    async def cancel(self, transfer_id: str) -> bool:
        """Ask a running transfer to stop; False when it had already finished.

        Before its credit, the transfer refunds the source (COMPENSATED, or FAILED when nothing
        was debited); after its credit, the cancellation changes nothing. A HELD pending transfer
        is voided; once a post or a void is under way, it runs to its end.
        """
        handle = self._handle(transfer_id)
        description = await self._describe(handle, transfer_id)
        if description.status != WorkflowExecutionStatus.RUNNING:
            return False
        await handle.cancel()
        return True

    async def retry_refund(self, transfer_id: str, *, wait: bool = True) -> TransferOutcome:
        """Try a stuck refund again, once its cause is fixed (Update `retry_compensation`; of
        its batch, for a batch's transfer, as `locate` finds it).

        With `wait`, returns once the transfer has ended (COMPENSATED) or its refund is refused
        again (step `refund-stuck`); without, the status right after the Update. Raises
        `RefundNotStuck` when no refund waits for an operator, `TransferNotFound` for an
        unknown id.
        """
        found = await self.locate(transfer_id)
        if isinstance(found, BatchMember):
            return await self.decide_in_batch(
                found,
                lambda h: h.execute_update(TransferBatchWorkflow.retry_compensation, transfer_id),
                wait=wait,
            )
        await self._decide_stuck_refund(
            transfer_id, lambda h: h.execute_update(TransferWorkflow.retry_compensation)
        )
        return await until_decided(lambda: self.status(transfer_id), wait=wait)

    async def resolve(self, transfer_id: str, note: str, *, wait: bool = True) -> TransferOutcome:
        """Record that a stuck refund was settled by hand, `note` saying how (Update
        `resolve_compensation`; of its batch, for a batch's transfer): the workflow writes a
        refund marker on the source's shard, so that no refund lands after the operator's, and
        the transfer ends COMPENSATED.

        With `wait`, returns the final outcome; raises `InvalidInput` for an empty note, and as
        `retry_refund` otherwise.
        """
        check_note(note)
        found = await self.locate(transfer_id)
        if isinstance(found, BatchMember):
            return await self.decide_in_batch(
                found,
                lambda h: h.execute_update(
                    TransferBatchWorkflow.resolve_compensation, args=[transfer_id, note]
                ),
                wait=wait,
            )
        handle = await self._decide_stuck_refund(
            transfer_id, lambda h: h.execute_update(TransferWorkflow.resolve_compensation, note)
        )
        if wait:
            return await _final_outcome(handle, transfer_id)
        return await self.status(transfer_id)

    async def ended(self, transfer_ids: Sequence[str]) -> set[str]:
        """Those of `transfer_ids` whose workflow has closed, whatever its status, or that
        Temporal does not know (never started, or forgotten after retention): the audit's test
        for money stranded in flight."""
        gate = asyncio.Semaphore(ENDED_DESCRIBES_IN_FLIGHT)

        async def has_ended(transfer_id: str) -> bool:
            async with gate:
                try:
                    description = await self._describe(self._handle(transfer_id), transfer_id)
                except TransferNotFound:
                    return True
            return description.status != WorkflowExecutionStatus.RUNNING

        verdicts = await asyncio.gather(*(has_ended(transfer_id) for transfer_id in transfer_ids))
        return {
            transfer_id for transfer_id, ended in zip(transfer_ids, verdicts, strict=True) if ended
        }

    def ui_link(self, transfer_id: str) -> str:
        """The transfer's page in the Temporal Web UI."""
        page = workflows_page(self.settings.ui_url, self.settings.temporal_namespace)
        return f"{page}/{workflow_id(transfer_id)}"

    async def start(self, request: TransferRequest) -> None:
        """Start the transfer and return at once; an id submitted before follows `submit`'s
        rules (the same request is that transfer, another one is an `IdempotencyConflict`)."""
        await self._start(request)

    async def _start(self, request: TransferRequest) -> Handle:
        """Start the request's workflow, or find the one started with this id before: with the
        same request it is that transfer; with another, `IdempotencyConflict`."""
        try:
            # A new id (the usual case) costs one call; only a known one has its input compared.
            return await self.client.start_workflow(
                _workflow_type(type(request)),
                request,
                result_type=TransferOutcome,
                id=workflow_id(request.transfer_id),
                task_queue=self.settings.transfers_task_queue,
                # One workflow per transfer id, ever: a running or closed one is found, never
                # started again (the shard's unique entries guard after retention).
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=_summary_line(request),
                search_attributes=_search_attributes(request),
            )
        except WorkflowAlreadyStartedError as error:
            handle = self._handle(request.transfer_id, run_id=error.run_id)
        recorded = await self._recorded_request(handle, type(request))
        if recorded != request:
            raise IdempotencyConflict(_conflict_message(request, recorded))
        return handle

    async def _recorded_request(
        self, handle: Handle, request_type: type[TransferRequest]
    ) -> TransferRequest | None:
        """The input the workflow was started with (its first history event); None if it is not
        a valid `request_type` (another kind of transfer, or a client that bypassed validation)."""
        async for event in handle.fetch_history_events(page_size=1):
            started = event.workflow_execution_started_event_attributes
            if started.workflow_type.name != _workflow_type(request_type):
                return None
            payloads = started.input.payloads
            try:
                [recorded] = await self.client.data_converter.decode(payloads, [request_type])
            except ValidationError:
                return None
            return recorded if isinstance(recorded, request_type) else None
        return None

    async def _resolve_hold(
        self, transfer_id: str, update: Callable[[Handle], Awaitable[TransferOutcome]]
    ) -> TransferOutcome:
        """Send a post or void Update; its refusal raised as the shard error of that name."""
        handle = self._handle(transfer_id)
        description = await self._describe(handle, transfer_id)
        if description.workflow_type != PENDING_WORKFLOW_TYPE:
            raise HoldNotActive(f"transfer {transfer_id} is not pending: it holds nothing")
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise await self._already_resolved(transfer_id)
        try:
            return await update(handle)
        except WorkflowUpdateFailedError as failure:
            cause = failure.cause
            if isinstance(cause, ApplicationError) and cause.type in BUSINESS_ERRORS:
                raise BUSINESS_ERRORS[cause.type](cause.message) from None
            raise
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:  # it closed after the describe
                raise
            raise await self._already_resolved(transfer_id) from None

    async def _decide_stuck_refund(
        self, transfer_id: str, update: Callable[[Handle], Awaitable[None]]
    ) -> Handle:
        """Send an operator's Update about a stuck refund; its refusal as `RefundNotStuck`."""
        handle = self._handle(transfer_id)
        description = await self._describe(handle, transfer_id)
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise await self._not_stuck(transfer_id)
        try:
            await update(handle)
        except WorkflowUpdateFailedError as failure:
            cause = failure.cause
            if not isinstance(cause, ApplicationError):
                raise
            raise RefundNotStuck(f"transfer {transfer_id}: {cause.message}") from None
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:  # it closed after the describe
                raise
            raise await self._not_stuck(transfer_id) from None
        return handle

    async def _not_stuck(self, transfer_id: str) -> RefundNotStuck:
        outcome = await self.status(transfer_id)
        return RefundNotStuck(
            f"transfer {transfer_id} has ended ({outcome.status}, step {outcome.step}): "
            "no refund is stuck"
        )

    async def _already_resolved(self, transfer_id: str) -> HoldExpired | HoldNotActive:
        outcome = await self.status(transfer_id)
        error = HoldExpired if outcome.status == TransferStatus.EXPIRED else HoldNotActive
        how = _HOLD_RESOLVED_BY.get(outcome.status, "resolved")
        return error(f"transfer {transfer_id} is {outcome.status} ({outcome.step}): {how}")

    def _handle(self, transfer_id: str, run_id: str | None = None) -> Handle:
        return self.client.get_workflow_handle_for(
            TransferWorkflow.run, workflow_id(transfer_id), run_id=run_id
        )

    async def _describe(self, handle: Handle, transfer_id: str) -> WorkflowExecutionDescription:
        try:
            return await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise TransferNotFound(f"no transfer {transfer_id}") from None
            raise


async def _final_outcome(handle: Handle, transfer_id: str) -> TransferOutcome:
    """The workflow's result; a workflow that failed outright (invalid input, terminated) is
    reported as FAILED with the reason."""
    try:
        return await handle.result()
    except WorkflowFailureError as failure:
        return TransferOutcome(
            transfer_id=transfer_id,
            status=TransferStatus.FAILED,
            step="workflow-failed",
            error=_error_of(failure.cause),
        )


def _error_of(cause: BaseException) -> TransferError:
    if isinstance(cause, ApplicationError):
        return TransferError(type=cause.type or "ApplicationError", message=cause.message)
    if isinstance(cause, TerminatedError):
        return TransferError(type="Terminated", message=str(cause) or "terminated by an operator")
    if isinstance(cause, CancelledError):
        return TransferError(type="Cancelled", message=str(cause) or "cancelled")
    if isinstance(cause, TemporalTimeoutError):
        return TransferError(type="TimedOut", message=str(cause) or "timed out")
    return TransferError(type=type(cause).__name__, message=str(cause))


def _outcome_from_search_attributes(
    transfer_id: str, description: WorkflowExecutionDescription
) -> TransferOutcome:
    status = _recorded_status(description.typed_search_attributes) or TransferStatus.RUNNING
    return TransferOutcome(transfer_id=transfer_id, status=status, step="no worker answered")


def _recorded_status(attributes: TypedSearchAttributes) -> TransferStatus | None:
    """The `TransferStatus` search attribute (RUNNING when unset); None when it holds none of
    ours: any client of the namespace can set it."""
    try:
        return TransferStatus(attributes.get(TRANSFER_STATUS) or TransferStatus.RUNNING)
    except ValueError:
        return None


def _summary(execution: WorkflowExecution) -> TransferSummary | None:
    attributes = execution.typed_search_attributes
    source, target = attributes.get(SOURCE_ACCOUNT_ID), attributes.get(TARGET_ACCOUNT_ID)
    amount, currency = attributes.get(AMOUNT), attributes.get(CURRENCY)
    status = _recorded_status(attributes)
    if source is None or target is None or amount is None or currency is None or status is None:
        return None  # started by a foreign client without our search attributes (or with others)
    if execution.status != WorkflowExecutionStatus.RUNNING and not status.final:
        status = TransferStatus.FAILED  # closed without saying so: failed outright, terminated
    return TransferSummary(
        transfer_id=execution.id.removeprefix("transfer-"),
        status=status,
        source=source,
        target=target,
        amount=amount,
        currency=currency,
        started_at=execution.start_time,
    )


# What became of the hold of a pending transfer that ended, as a late post or void is told.
_HOLD_RESOLVED_BY = {
    TransferStatus.COMPLETED: "its hold was posted already",
    TransferStatus.COMPENSATED: "its hold was posted already",
    TransferStatus.VOIDED: "its hold was voided already",
    TransferStatus.EXPIRED: "its hold expired",
    TransferStatus.FAILED: "its hold was never placed",
}


def _workflow_type(request_type: type[TransferRequest]) -> str:
    pending = issubclass(request_type, PendingTransferRequest)
    return PENDING_WORKFLOW_TYPE if pending else WORKFLOW_TYPE


def _summary_line(request: TransferRequest) -> Readable:
    """The Web UI's one-line summary: '12.34 USD acc-1 -> acc-2' ('hold 12.34 USD ...'). What
    the search attributes say, never the memo: it stays readable when payloads are encrypted."""
    amount = format_amount(request.amount, request.currency)
    line = f"{amount} {request.currency} {request.source_account_id} -> {request.target_account_id}"
    return Readable(f"hold {line}" if isinstance(request, PendingTransferRequest) else line)


def _search_attributes(request: TransferRequest) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(TRANSFER_STATUS, TransferStatus.RUNNING.value),
            SearchAttributePair(SOURCE_ACCOUNT_ID, request.source_account_id),
            SearchAttributePair(TARGET_ACCOUNT_ID, request.target_account_id),
            SearchAttributePair(AMOUNT, request.amount),
            SearchAttributePair(CURRENCY, request.currency),
        ]
    )


def _conflict_message(request: TransferRequest, recorded: TransferRequest | None) -> str:
    prefix = f"transfer {request.transfer_id} was submitted before"
    if recorded is None:
        return f"{prefix} as another kind of transfer or invalid; use a new transfer id"
    differences = ", ".join(
        f"{name} {getattr(recorded, name)!r} (now {getattr(request, name)!r})"
        for name in type(request).model_fields
        if getattr(recorded, name) != getattr(request, name)
    )
    return f"{prefix} with other fields: {differences}; use a new transfer id"
