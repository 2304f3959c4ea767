"""Lost workflow tasks, produced on purpose: what a task committed on the shards, without it.

A shard step is a local activity: it commits inside a workflow task, before the task is recorded.
When the task is lost (the worker dies, Temporal restarts), the next run starts from a history
without the step. Here the tests commit those steps themselves, with the request's fingerprint as
the workflow sends it, then let a workflow run over them, and judge the end by the entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDReusePolicy

from shards.audit import run_audit
from shards.ledger import Ledger
from tests.support.workers import record_history
from transfers.client import workflow_id
from transfers.settings import Settings
from workflows.models import PendingTransferRequest, TransferOutcome, TransferRequest

NOTHING_MOVED = frozenset({"FAILED", "VOIDED", "EXPIRED"})


class LostTask:
    """Commits the steps of `request` on the shards, as its lost workflow task had."""

    def __init__(self, ledger: Ledger, request: TransferRequest) -> None:
        self.ledger = ledger
        self.request = request
        self.fingerprint = request.fingerprint()

    async def commit(self, *steps: str) -> None:
        for step in steps:
            await getattr(self, step)()

    async def claim(self) -> None:
        await self.ledger.claim(self.request.transfer_id, self.fingerprint)

    async def debit(self) -> None:
        await self.ledger.debit(*self._on(self.request.source_account_id))

    async def credit(self) -> None:
        await self.ledger.credit(*self._on(self.request.target_account_id))

    async def fence(self) -> None:
        await self.ledger.fence_credit(*self._on(self.request.target_account_id))

    async def refund(self) -> None:
        await self.ledger.refund(*self._on(self.request.source_account_id))

    async def within_shard(self) -> None:
        r = self.request
        await self.ledger.transfer_within_shard(
            r.transfer_id,
            r.source_account_id,
            r.target_account_id,
            r.amount,
            r.currency,
            self.fingerprint,
        )

    async def hold(self) -> None:
        r = self.request
        assert isinstance(r, PendingTransferRequest)
        await self.ledger.hold(
            r.transfer_id, r.source_account_id, r.amount, r.timeout_s, r.currency, self.fingerprint
        )

    async def capture(self, amount: int | None = None) -> None:
        r = self.request
        await self.ledger.post(r.transfer_id, r.source_account_id, amount, self.fingerprint)

    async def release(self) -> None:
        r = self.request
        await self.ledger.void(r.transfer_id, r.source_account_id, r.amount, self.fingerprint)

    def _on(self, account_id: str) -> tuple[str, str, int, str, str]:
        r = self.request
        return r.transfer_id, account_id, r.amount, r.currency, self.fingerprint


@dataclass(frozen=True)
class EntryRow:
    kind: str
    account_id: str
    amount: int
    marker: bool


async def entries_of(ledger: Ledger, transfer_id: str) -> list[EntryRow]:
    """Every entry of the transfer, on every shard (read with SQL, not through the ledger)."""
    query = text(
        "SELECT kind, account_id, amount, marker FROM entries WHERE transfer_id = :transfer_id"
    )
    rows: list[EntryRow] = []
    for shard in ledger.router.shards:
        async with shard.engine.connect() as connection:
            found = await connection.execute(query, {"transfer_id": transfer_id})
            rows += [EntryRow(*row) for row in found]
    return rows


def moved_by_entries(rows: list[EntryRow]) -> int:
    """What reached the target by the entries; asserts they settle the transfer one way."""
    real = [row for row in rows if not row.marker]
    kinds = [row.kind for row in real if row.kind in ("debit", "capture", "credit", "refund")]
    assert len(kinds) == len(set(kinds)), f"a kind recorded twice: {rows}"
    taken = "debit" in kinds or "capture" in kinds
    credited, refunded = "credit" in kinds, "refund" in kinds
    assert not (credited and refunded), f"credited and refunded: {rows}"
    assert taken == (credited or refunded), f"money in flight or made: {rows}"
    return next((row.amount for row in real if row.kind == "credit"), 0)


async def assert_settled(
    ledger: Ledger,
    outcome: TransferOutcome,
    *,
    balances: dict[str, int],
    opening: dict[str, int],
) -> None:
    """The end agrees with the entries, money is conserved, nothing is in flight or held, and
    the audit finds nothing wrong with this transfer (its workflow has ended)."""
    rows = await entries_of(ledger, outcome.transfer_id)
    moved = moved_by_entries(rows)
    if outcome.status == "COMPLETED":
        assert moved > 0, rows
    elif outcome.status == "COMPENSATED":
        assert moved == 0, rows
        assert any(r.kind == "refund" and not r.marker for r in rows), rows
    else:
        assert outcome.status in NOTHING_MOVED, outcome
        assert moved == 0, rows
    now = {account: (await ledger.get_account(account)) for account in opening}
    assert {account: view.balance for account, view in now.items()} == balances
    assert sum(balances.values()) == sum(opening.values())  # conserved
    assert all(view.held == 0 for view in now.values())

    async def ended(transfer_ids: list[str]) -> set[str]:
        return set(transfer_ids)

    report = await run_audit(ledger.router, workflow_ended=ended)
    assert outcome.transfer_id not in report.contradictions
    assert outcome.transfer_id not in report.stranded
    assert not set(opening) & set(report.account_mismatches)


async def run_again(
    client: Client, settings: Settings, request: TransferRequest, history: str | None = None
) -> TransferOutcome:
    """A new run of the transfer's workflow id once the first has closed (after retention, or as
    a foreign client starts it: Temporal's default id-reuse policy allows it); its history
    recorded as `history` (see record_history; `{status}` there is the run's status) when named."""
    pending = isinstance(request, PendingTransferRequest)
    handle = await client.start_workflow(
        "PendingTransferWorkflow" if pending else "TransferWorkflow",
        request,
        id=workflow_id(request.transfer_id),
        task_queue=settings.transfers_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        result_type=TransferOutcome,
    )
    try:
        outcome: TransferOutcome = await handle.result()
    except WorkflowFailureError as error:  # pragma: no cover - the caller's assertion shows it
        raise AssertionError(f"the new run failed instead of ending: {error.cause}") from error
    if history is not None:
        await record_history(handle, history.format(status=outcome.status.lower()))
    return outcome
