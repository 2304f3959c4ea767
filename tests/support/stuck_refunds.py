"""A refund that waits for an operator, produced in well under a second.

As in tests/workflows/test_stuck_refund.py: the target is frozen, so the credit is refused; while
the credit waits on the target's row, the source receives so much that refunding it would
overflow the largest storable balance (InvalidAmount, a refusal). The source is watched on its
shard (its statement), not through the workflow's status query, which waits while a local step
holds the workflow task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio.client import Client

from tests.support.workers import Accounts, wait_for_step
from tests.workflows.test_stuck_refund import AMOUNT, BALANCE, NEAR_MAX_DEPOSIT
from transfers.client import TransfersClient, workflow_id
from workflows.models import TransferOutcome, TransferRequest

__all__ = ["AMOUNT", "BALANCE", "NEAR_MAX_DEPOSIT", "stuck_refund"]

WAIT_S = 10.0


async def _debited(accounts: Accounts, account_id: str) -> None:
    """Until the account's newest entry is a debit (its shard is polled)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            page = await accounts.ledger.statement(account_id, limit=1)
            if page.entries[0].kind == "debit":
                return
            await asyncio.sleep(0.05)


async def stuck_refund(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> TransferRequest:
    """A transfer to a frozen account whose refund is stuck: once the source is debited, and
    while the credit waits on the target's row, the source receives so much that the refund
    would overflow it."""
    source = await accounts.open(BALANCE, shard=0)
    target = await accounts.open(0, shard=1)
    await accounts.freeze(target)
    request = request_for(source, target, AMOUNT)
    async with accounts.row_locked(target):
        await transfers.start(request)
        await _debited(accounts, source)
        await accounts.deposit(source, NEAR_MAX_DEPOSIT)
    handle = client.get_workflow_handle(workflow_id(request.transfer_id))
    await wait_for_step(handle, "refund-stuck")
    return request


async def stuck_batch(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    stuck: int,
    completing: int = 0,
) -> tuple[str, list[TransferRequest], list[TransferRequest]]:
    """A batch whose first `stuck` transfers (each from its own source, to one frozen target)
    wait with their refund stuck as `stuck_refund`'s does, and whose `completing` others
    (another target, on the same shard) complete: its id, the stuck, the completed."""
    frozen = await accounts.open(0, shard=1)
    await accounts.freeze(frozen)
    other = await accounts.open(0, shard=1)
    sources = [await accounts.open(BALANCE, shard=0) for _ in range(stuck + completing)]
    requests = [request_for(source, frozen, AMOUNT) for source in sources[:stuck]]
    requests += [request_for(source, other, AMOUNT) for source in sources[stuck:]]
    async with accounts.row_locked(frozen):  # the batch's credits on that shard wait here
        batch_id = await transfers.start_batch(requests)
        for source in sources[:stuck]:
            await _debited(accounts, source)
            await accounts.deposit(source, NEAR_MAX_DEPOSIT)
    async with asyncio.timeout(WAIT_S):
        while True:
            outcome = await transfers.batch_status(batch_id)
            if {t.step for t in outcome.transfers[:stuck]} == {"refund-stuck"}:
                return batch_id, requests[:stuck], requests[stuck:]
            await asyncio.sleep(0.1)


async def until_batch_step(
    transfers: TransfersClient, batch_id: str, transfer_id: str, step: str
) -> TransferOutcome:
    """The batch's transfer once at `step` or final (its batch's status query, polled)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            outcome = await transfers.batch_status(batch_id)
            [mine] = [t for t in outcome.transfers if t.transfer_id == transfer_id]
            if mine.step == step or mine.status.final:
                return mine
            await asyncio.sleep(0.1)
