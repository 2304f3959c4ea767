"""What the invariants are checked against, read once the system is quiet: every shard's
accounts, entries and active holds, the audit, and Temporal's record of every transfer."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus

from shards.audit import AuditReport, run_audit
from shards.ledger import Ledger
from shards.records import AccountView
from shards.router import ShardRouter
from shards.schema import HoldStatus, entries, holds
from transfers.client import PENDING_WORKFLOW_TYPE, WORKFLOW_TYPE, TransfersClient
from workflows.search_attributes import TRANSFER_STATUS

VISIBILITY_WAIT_S = 10.0  # Temporal's list can trail the closing of a run by a moment
OPEN = "OPEN"


@dataclass(frozen=True)
class EntryFact:
    transfer_id: str
    kind: str
    account_id: str
    amount: int
    marker: bool


@dataclass(frozen=True)
class TemporalView:
    """Per transfer id: how many workflow runs it has, and the status of the latest listed
    (`OPEN` while it still runs)."""

    runs: Counter[str]
    statuses: dict[str, str]


@dataclass(frozen=True)
class Evidence:
    accounts: list[AccountView]
    entries: list[EntryFact]
    active_holds: list[str]  # transfer ids
    audit: AuditReport
    temporal: TemporalView


async def gather_evidence(
    router: ShardRouter, client: TransfersClient, submitted: set[str]
) -> Evidence:
    """Everything the checks need; Temporal's list is read until it shows `submitted` closed."""
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
    return Evidence(
        accounts=await Ledger(router).list_accounts(limit=1_000_000),
        entries=shard_entries,
        active_holds=active_holds,
        audit=await run_audit(router),
        temporal=await _temporal_view(client, submitted),
    )


async def _temporal_view(client: TransfersClient, submitted: set[str]) -> TemporalView:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + VISIBILITY_WAIT_S
    while True:
        view = await _list_transfers(client)
        still_open = {id_ for id_ in submitted if view.statuses.get(id_, OPEN) == OPEN}
        if not still_open or loop.time() > deadline:
            return view
        await asyncio.sleep(0.5)


async def _list_transfers(client: TransfersClient) -> TemporalView:
    runs: Counter[str] = Counter()
    statuses: dict[str, str] = {}
    query = f"WorkflowType IN ('{WORKFLOW_TYPE}', '{PENDING_WORKFLOW_TYPE}')"
    async for execution in client.client.list_workflows(query):
        transfer_id = execution.id.removeprefix("transfer-")
        runs[transfer_id] += 1
        closed = execution.status not in {None, WorkflowExecutionStatus.RUNNING}
        # a run closed without a final status of ours failed outright (terminated, ...)
        status = execution.typed_search_attributes.get(TRANSFER_STATUS) or "no status"
        statuses[transfer_id] = status if closed else OPEN
    return TemporalView(runs, statuses)
