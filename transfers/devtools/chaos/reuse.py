"""The same-id fault: a foreign client starts a new run of an ended transfer's workflow id with
other fields (another target, or another amount), as Temporal lets anyone once the first run has
closed (id reuse policy ALLOW_DUPLICATE) and as anyone may after retention. The shards must refuse
it whatever the policy: it ends FAILED with an IdempotencyConflict and moves no money (checked by
invariants.same_id_other_fields, money_checks.money_moves and conservation).
"""

from __future__ import annotations

import asyncio
import random

from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from transfers.client import WORKFLOW_TYPE, workflow_id
from transfers.devtools.chaos.accounts import AccountBook
from transfers.devtools.chaos.effects import Effect
from transfers.devtools.chaos.schedule import sample_up_to
from transfers.devtools.chaos.workload import TransferRecord, Workload
from workflows.models import TransferRequest

REUSED_PER_FAULT = 2
START_WAIT_S = 10.0


class SameIdRuns:
    """Starts runs with other fields under the ids of ended transfers of `workload`."""

    def __init__(self, workload: Workload, book: AccountBook, rng: random.Random) -> None:
        self.workload = workload
        self.book = book
        self.rng = rng

    async def start(self) -> Effect:
        """Reuse a few ended ids; in effect once a run was started."""
        ended = [
            record
            for record in self.workload.singles()
            # a duplicate burst's answer still on its way would meet the new run
            if record.outcome is not None and not record.duplicated and not record.other_runs
        ]
        chosen = sample_up_to(self.rng, ended, REUSED_PER_FAULT)
        notes = await asyncio.gather(*map(self._start_other, chosen))
        started = [note for note in notes if note is not None]
        note = "; ".join(started) or f"no run started of {len(chosen)} ended ids"
        return Effect(note, took_effect=bool(started))

    async def _start_other(self, record: TransferRecord) -> str | None:
        request = self._other_fields(record)
        # Counted before the start: a start whose answer is lost may have begun a run all the same.
        record.other_runs += 1
        settings = self.workload.client.settings
        try:
            async with asyncio.timeout(START_WAIT_S):
                await self.workload.client.client.start_workflow(
                    WORKFLOW_TYPE,
                    request,
                    id=workflow_id(request.transfer_id),
                    task_queue=settings.transfers_task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                )
        except (RPCError, TimeoutError, WorkflowAlreadyStartedError):
            return None  # Temporal restarting
        return f"{request.transfer_id}: {request.memo}"

    def _other_fields(self, record: TransferRecord) -> TransferRequest:
        """The transfer's request with another amount, or another target of its currency, on a
        third shard when there is one (the shards' idempotency was once only per shard)."""
        first = record.request
        fields = {name: getattr(first, name) for name in TransferRequest.model_fields}
        others = [
            account
            for account in self.book.open[first.currency]
            if account not in {first.source_account_id, first.target_account_id}
        ]
        if others and self.rng.random() < 0.5:
            used = {
                self.book.shard_of(first.source_account_id),
                self.book.shard_of(first.target_account_id),
            }
            third = [account for account in others if self.book.shard_of(account) not in used]
            fields["target_account_id"] = self.rng.choice(third or others)
            fields["memo"] = f"other target {fields['target_account_id']}"
        else:
            fields["amount"] = first.amount + 1
            fields["memo"] = f"other amount {fields['amount']}"
        return TransferRequest(**fields)
