"""What the invariants are checked against, read once the system is quiet: every shard's
accounts, entries and active holds, the audit, and Temporal's record of every transfer."""

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
from transfers.client import PENDING_WORKFLOW_TYPE, WORKFLOW_TYPE, TransfersClient, workflow_id
from workflows.models import TransferOutcome
from workflows.search_attributes import TRANSFER_STATUS

VISIBILITY_WAIT_S = 10.0  # Temporal's list can trail the closing of a run by a moment
RESULT_WAIT_S = 5.0  # a closed run's result is one call away
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
class TemporalView:
    """Per transfer id, its workflow runs, the first started first."""

    runs: dict[str, list[RunFact]] = field(default_factory=dict)

    def first_status(self, transfer_id: str) -> str:
        runs = self.runs.get(transfer_id)
        return runs[0].status if runs else "not listed"


@dataclass(frozen=True)
class Evidence:
    accounts: list[AccountView]
    entries: list[EntryFact]
    active_holds: list[str]  # transfer ids
    audit: AuditReport
    temporal: TemporalView


async def gather_evidence(
    router: ShardRouter, client: TransfersClient, submitted: set[str], reused: set[str]
) -> Evidence:
    """Everything the checks need; Temporal's list is read until it shows every run of
    `submitted` closed. The runs that `reused` ids got later (other fields) come with their
    error."""
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
    temporal = await _temporal_view(client, submitted)
    every_run_closed = all(run.status != OPEN for runs in temporal.runs.values() for run in runs)
    return Evidence(
        accounts=await Ledger(router).list_accounts(limit=1_000_000),
        entries=shard_entries,
        active_holds=active_holds,
        # With traffic stopped and every run closed, any money in flight is stranded.
        audit=await run_audit(router, quiet=every_run_closed),
        temporal=await _with_errors_of_later_runs(client, temporal, reused),
    )


async def _temporal_view(client: TransfersClient, submitted: set[str]) -> TemporalView:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + VISIBILITY_WAIT_S
    while True:
        view = await _list_transfers(client)
        running = {id_ for id_, runs in view.runs.items() if any(r.status == OPEN for r in runs)}
        still_open = submitted - (set(view.runs) - running)  # unlisted, or a run not closed
        if not still_open or loop.time() > deadline:
            return view
        await asyncio.sleep(0.5)


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
    return TemporalView(runs)


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
