"""What the invariants are checked against, read once the system is quiet: every shard's
accounts, entries and active holds, the audit, and Temporal's record of every transfer and
every batch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from shards.audit import AuditReport, run_audit
from shards.ledger import Ledger
from shards.records import AccountView
from shards.router import ShardRouter
from shards.schema import HoldStatus, entries, holds
from transfers.batch_client import BATCH_WORKFLOW_TYPE
from transfers.client import PENDING_WORKFLOW_TYPE, WORKFLOW_TYPE, TransfersClient, workflow_id
from workflows.batch import TransferBatchWorkflow
from workflows.batch_models import batch_workflow_id
from workflows.models import TransferOutcome
from workflows.search_attributes import TRANSFER_STATUS

VISIBILITY_WAIT_S = 10.0  # Temporal's list can trail the closing of a run by a moment
RESULT_WAIT_S = 5.0  # a closed run's result is one call away
RESULTS_IN_FLIGHT = 16  # batch results read at once
OPEN = "OPEN"


@dataclass(frozen=True)
class EntryFact:
    transfer_id: str
    kind: str
    account_id: str
    amount: int
    marker: bool


@dataclass(frozen=True)
class RunFact:
    """One workflow run of a transfer id: our status search attribute once it closed (`OPEN`
    while it runs), and for a run started with other fields, the type of the error it ended
    with."""

    run_id: str
    status: str
    error_type: str | None = None


@dataclass(frozen=True)
class BatchRunFact:
    """One workflow run of a batch id: `OPEN` while it runs, else how it closed (`COMPLETED`,
    `TERMINATED` ...); once closed, its transfers' statuses and its counts, as its result says
    (as its status query says, for a run that failed outright)."""

    run_id: str
    status: str
    statuses: dict[str, str] = field(default_factory=dict)  # transfer id -> status
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TemporalView:
    """Per transfer id, its workflow runs, the first started first; per batch id, likewise."""

    runs: dict[str, list[RunFact]] = field(default_factory=dict)
    batch_runs: dict[str, list[BatchRunFact]] = field(default_factory=dict)

    def first_status(self, transfer_id: str, batch_id: str | None = None) -> str:
        """The transfer's status in its first run, or in its batch's first run."""
        if batch_id is not None:
            batch = self.batch_runs.get(batch_id)
            return batch[0].statuses.get(transfer_id, "not in its batch") if batch else "not listed"
        runs = self.runs.get(transfer_id)
        return runs[0].status if runs else "not listed"

    def batch_members(self) -> set[str]:
        """The ids of the transfers some listed batch holds."""
        return {tid for runs in self.batch_runs.values() for run in runs for tid in run.statuses}


@dataclass(frozen=True)
class Evidence:
    accounts: list[AccountView]
    entries: list[EntryFact]
    active_holds: list[str]  # transfer ids
    audit: AuditReport
    temporal: TemporalView


async def gather_evidence(
    router: ShardRouter,
    client: TransfersClient,
    submitted: set[str],
    reused: set[str],
    batches: set[str],
) -> Evidence:
    """Everything the checks need; Temporal's list is read until it shows every run of
    `submitted` (transfers submitted alone) and of `batches` closed. The runs that `reused` ids
    got later (other fields) come with their error."""
    shard_entries: list[EntryFact] = []
    active_holds: list[str] = []
    entry_query = select(
        entries.c.transfer_id,
        entries.c.kind,
        entries.c.account_id,
        entries.c.amount,
        entries.c.marker,
    )
    hold_query = select(holds.c.transfer_id).where(holds.c.status == HoldStatus.ACTIVE)
    for shard in router.shards:
        async with shard.begin() as connection:
            shard_entries += [EntryFact(*row) for row in await connection.execute(entry_query)]
            active_holds += list((await connection.execute(hold_query)).scalars())
    temporal = await _temporal_view(client, submitted, batches)
    statuses = [run.status for runs in temporal.runs.values() for run in runs]
    statuses += [run.status for runs in temporal.batch_runs.values() for run in runs]
    every_run_closed = OPEN not in statuses
    return Evidence(
        accounts=await Ledger(router).list_accounts(limit=1_000_000),
        entries=shard_entries,
        active_holds=active_holds,
        # With traffic stopped and every run closed, any money in flight is stranded.
        audit=await run_audit(router, quiet=every_run_closed),
        temporal=await _with_errors_of_later_runs(client, temporal, reused),
    )


async def _temporal_view(
    client: TransfersClient, submitted: set[str], batches: set[str]
) -> TemporalView:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + VISIBILITY_WAIT_S
    while True:
        view = await _list_transfers(client)
        batch_runs = await _list_batches(client)
        if not (_still_open(view.runs, submitted) or _still_open(batch_runs, batches)):
            break
        if loop.time() > deadline:
            break
        await asyncio.sleep(0.5)
    return TemporalView(view.runs, await _with_outcomes(client, batch_runs))


def _still_open(listed: dict[str, list[RunFact]], wanted: set[str]) -> set[str]:
    """The ids of `wanted` not listed, or with a run not closed."""
    running = {id_ for id_, runs in listed.items() if any(r.status == OPEN for r in runs)}
    return wanted - (set(listed) - running)


async def _list_transfers(client: TransfersClient) -> TemporalView:
    listed: dict[str, list[tuple[datetime, RunFact]]] = {}
    query = f"WorkflowType IN ('{WORKFLOW_TYPE}', '{PENDING_WORKFLOW_TYPE}')"
    async for execution in client.client.list_workflows(query):
        transfer_id = execution.id.removeprefix("transfer-")
        fact = RunFact(execution.run_id, _status(execution))
        listed.setdefault(transfer_id, []).append((execution.start_time, fact))
    return TemporalView(
        {
            id_: [fact for _, fact in sorted(runs, key=lambda r: r[0])]
            for id_, runs in listed.items()
        }
    )


async def _list_batches(client: TransfersClient) -> dict[str, list[RunFact]]:
    """Per batch id its runs, the first started first: `OPEN`, or how each closed."""
    listed: dict[str, list[tuple[datetime, RunFact]]] = {}
    query = f"WorkflowType = '{BATCH_WORKFLOW_TYPE}'"
    async for execution in client.client.list_workflows(query):
        status = execution.status
        closed = status is not None and status != WorkflowExecutionStatus.RUNNING
        fact = RunFact(execution.run_id, status.name if closed and status else OPEN)
        listed.setdefault(execution.id.removeprefix("batch-"), []).append(
            (execution.start_time, fact)
        )
    return {
        id_: [fact for _, fact in sorted(runs, key=lambda r: r[0])] for id_, runs in listed.items()
    }


async def _with_outcomes(
    client: TransfersClient, batch_runs: dict[str, list[RunFact]]
) -> dict[str, list[BatchRunFact]]:
    """Each closed batch run with its transfers' statuses and counts, from its result."""
    gate = asyncio.Semaphore(RESULTS_IN_FLIGHT)

    async def with_outcome(batch_id: str, run: RunFact) -> BatchRunFact:
        if run.status == OPEN:
            return BatchRunFact(run.run_id, run.status)
        handle = client.client.get_workflow_handle_for(
            TransferBatchWorkflow.run, batch_workflow_id(batch_id), run_id=run.run_id
        )
        try:
            async with gate, asyncio.timeout(RESULT_WAIT_S):
                try:
                    outcome = await handle.result(follow_runs=False)
                except WorkflowFailureError:  # failed outright: where its history left each one
                    outcome = await handle.query(TransferBatchWorkflow.status)
        except TimeoutError:  # its transfers show as "not in its batch"
            return BatchRunFact(run.run_id, f"{run.status}, no result")
        statuses = {transfer.transfer_id: transfer.status.value for transfer in outcome.transfers}
        return BatchRunFact(run.run_id, run.status, statuses, outcome.counts)

    async def of_batch(batch_id: str, runs: list[RunFact]) -> list[BatchRunFact]:
        return list(await asyncio.gather(*(with_outcome(batch_id, run) for run in runs)))

    facts = await asyncio.gather(*(of_batch(id_, runs) for id_, runs in batch_runs.items()))
    return dict(zip(batch_runs, facts, strict=True))


def _status(execution: WorkflowExecution) -> str:
    if execution.status in {None, WorkflowExecutionStatus.RUNNING}:
        return OPEN
    # a run closed without a final status of ours failed outright (terminated, ...)
    return execution.typed_search_attributes.get(TRANSFER_STATUS) or "no status"


async def _with_errors_of_later_runs(
    client: TransfersClient, view: TemporalView, reused: set[str]
) -> TemporalView:
    """The view with the error of every closed later run of a `reused` id, read from its result
    (the search attributes do not say it)."""
    runs = dict(view.runs)
    for transfer_id in reused & set(runs):
        first, *later = runs[transfer_id]
        runs[transfer_id] = [first] + [await _with_error(client, transfer_id, run) for run in later]
    return TemporalView(runs, view.batch_runs)


async def _with_error(client: TransfersClient, transfer_id: str, run: RunFact) -> RunFact:
    if run.status == OPEN:
        return run
    handle = client.client.get_workflow_handle(
        workflow_id(transfer_id), run_id=run.run_id, result_type=TransferOutcome
    )
    try:
        async with asyncio.timeout(RESULT_WAIT_S):
            outcome = await handle.result(follow_runs=False)
    except WorkflowFailureError as failure:  # failed outright: the cause names the error
        cause = failure.cause
        error_type = cause.type if isinstance(cause, ApplicationError) else None
        return RunFact(run.run_id, run.status, error_type or type(cause).__name__)
    except TimeoutError:
        return RunFact(run.run_id, run.status, "no result")
    return RunFact(run.run_id, run.status, outcome.error.type if outcome.error else "none")
