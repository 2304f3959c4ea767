"""TransferBatchWorkflow on the real shards and Temporal: each transfer of a batch ends on its own,
a batch submitted again moves no money twice, and a cancelled batch settles by the entries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from temporalio.client import Client

from shards.errors import IdempotencyConflict, InvalidInput
from tests.support.workers import Accounts, record_history
from transfers.client import TransfersClient
from workflows.batch_models import (
    MAX_BATCH_SIZE,
    BatchOutcome,
    batch_id_of,
    batch_workflow_id,
)
from workflows.models import TransferOutcome, TransferRequest, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")

C, F = TransferStatus.COMPLETED, TransferStatus.FAILED


def ends(outcome: BatchOutcome) -> list[tuple[str, str, str | None]]:
    """Each transfer's (status, step, error type), in the batch's order."""
    return [(t.status.value, t.step, t.error.type if t.error else None) for t in outcome.transfers]


def by_id(outcome: BatchOutcome, transfer_id: str) -> TransferOutcome:
    return next(t for t in outcome.transfers if t.transfer_id == transfer_id)


async def until_every_step(
    transfers: TransfersClient, batch_id: str, step: str, timeout_s: float = 30.0
) -> BatchOutcome:
    """Poll the batch's status query until every transfer is at `step` (a cancellation reaches
    a workflow task running local steps with its next heartbeat: up to 8 s)."""
    async with asyncio.timeout(timeout_s):
        while True:
            outcome = await transfers.batch_status(batch_id)
            if {t.step for t in outcome.transfers} == {step}:
                return outcome
            await asyncio.sleep(0.2)


async def test_each_transfer_of_a_mixed_batch_ends_on_its_own(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    rich = await accounts.open(1_000, shard=0)
    poor = await accounts.open(50, shard=0)
    twice = await accounts.open(100, shard=1)  # two debits of 60: the second is short
    closed_source = await accounts.open(500, shard=1)
    target = await accounts.open(shard=1)
    same_shard_target = await accounts.open(shard=0)
    frozen = await accounts.open(shard=1)
    closed_target = await accounts.open(shard=1)
    euro = await accounts.open(shard=1, currency="EUR")
    owned = request_for(rich, target, 1)
    await transfers.submit(owned)  # its id, taken by another request below
    await accounts.freeze(frozen)
    await accounts.close(closed_target)
    await accounts.withdraw(closed_source, 500)
    await accounts.close(closed_source)
    batch = [
        request_for(rich, target, 100),  # completed
        request_for(poor, target, 60),  # insufficient funds
        request_for(twice, target, 60),  # completed, in order ...
        request_for(twice, same_shard_target, 60),  # ... then short: same account twice
        request_for(rich, same_shard_target, 10),  # a same-shard pair
        request_for(rich, frozen, 20),  # credit refused: refunded
        request_for(rich, closed_target, 30),  # closed target: refunded
        request_for(rich, accounts.new_id("acc-unknown"), 40),  # unknown target: refunded
        request_for(rich, euro, 50),  # currency mismatch: refunded
        request_for(closed_source, target, 5),  # closed source: refused debit
        owned.model_copy(update={"amount": 2}),  # another request's transfer id
    ]

    outcome = await transfers.submit_batch(batch)

    assert ends(outcome) == [
        ("COMPLETED", "completed", None),
        ("FAILED", "debit-refused", "InsufficientFunds"),
        ("COMPLETED", "completed", None),
        ("FAILED", "debit-refused", "InsufficientFunds"),
        ("COMPLETED", "completed", None),
        ("COMPENSATED", "refunded", "AccountNotOpen"),
        ("COMPENSATED", "refunded", "AccountNotOpen"),
        ("COMPENSATED", "refunded", "AccountNotFound"),
        ("COMPENSATED", "refunded", "CurrencyMismatch"),
        ("FAILED", "debit-refused", "AccountNotOpen"),
        ("FAILED", "refused", "IdempotencyConflict"),
    ]
    assert outcome.counts == {"COMPLETED": 3, "FAILED": 4, "COMPENSATED": 4}
    assert outcome.batch_id == batch_id_of(batch)
    assert await accounts.balance(rich) == 1_000 - 1 - 100 - 10
    assert await accounts.balance(poor) == 50
    assert await accounts.balance(twice) == 40
    assert await accounts.balance(target) == 1 + 100 + 60
    assert await accounts.balance(same_shard_target) == 10
    assert [await accounts.balance(a) for a in (frozen, closed_target, euro)] == [0, 0, 0]
    await record_history(
        client.get_workflow_handle(batch_workflow_id(outcome.batch_id)), "batch_mixed"
    )


async def test_a_batch_submitted_again_moves_no_money_twice(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(shard=1)
    batch = [request_for(source, target, amount) for amount in (100, 200, 300)]

    first, again = await asyncio.gather(
        transfers.submit_batch(batch), transfers.submit_batch(batch)
    )
    later = await transfers.submit_batch(batch)
    # the same transfers cut into other batches (another --batch-size): replayed by the shards
    split = await transfers.submit_batch(batch[:2])

    assert first == again == later
    assert first.counts["COMPLETED"] == 3
    assert [t.status for t in split.transfers] == [C, C]
    assert split.batch_id != first.batch_id
    assert await accounts.balance(source) == 400
    assert await accounts.balance(target) == 600


async def test_a_batch_id_reused_for_other_transfers_is_refused(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(shard=1)
    await transfers.submit_batch([request_for(source, target, 1)], batch_id="b-reused-" + target)

    with pytest.raises(IdempotencyConflict, match="submitted before with other transfers"):
        await transfers.submit_batch(
            [request_for(source, target, 2)], batch_id="b-reused-" + target
        )
    assert await accounts.balance(target) == 1


async def test_a_batch_too_large_or_with_an_id_twice_is_refused_before_it_starts(
    transfers: TransfersClient, request_for: Callable[..., TransferRequest]
) -> None:
    one = request_for("acc-a", "acc-b", 1)
    too_many = [request_for("acc-a", "acc-b", 1) for _ in range(MAX_BATCH_SIZE + 1)]

    with pytest.raises(InvalidInput, match=f"at most {MAX_BATCH_SIZE:,} transfers"):
        await transfers.submit_batch(too_many)
    with pytest.raises(InvalidInput, match=f"a transfer id twice in one batch: {one.transfer_id}"):
        await transfers.submit_batch([one, one])
    with pytest.raises(InvalidInput, match="at least one transfer"):
        await transfers.submit_batch([])


async def test_a_batch_cancelled_before_its_debits_fails_them_all(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(shard=1)
    batch = [request_for(source, target, amount) for amount in (100, 200)]

    async with accounts.row_locked(source):  # the debits wait for the row
        batch_id = await transfers.start_batch(batch)
        await accounts.until_lock_waiters(source)
        assert await transfers.cancel_batch(batch_id)
        # released once the cancellation is seen: the refund markers wait for the row too
        await until_every_step(transfers, batch_id, "refunding")
    outcome = await transfers.batch_outcome(batch_id)

    assert ends(outcome) == [("FAILED", "cancelled", "Cancelled")] * 2
    assert await accounts.balance(source) == 1_000
    assert not await transfers.cancel_batch(batch_id)  # ended: nothing to cancel
    await record_history(client.get_workflow_handle(batch_workflow_id(batch_id)), "batch_cancelled")


async def test_a_cancelled_transfer_whose_id_names_a_deposit_on_its_source_ends_failed(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """The deposit was given the transfer's id (`--entry-id`: no claim): this request's debit can
    never land on that shard, so its refund is owed nothing; it used to be refused for ever."""
    source = await accounts.open(shard=0)
    target = await accounts.open(shard=1)
    transfer = request_for(source, target, 100)
    await accounts.ledger.deposit(transfer.transfer_id, source, 1_000)

    async with accounts.row_locked(source):  # the debit waits for the row
        batch_id = await transfers.start_batch([transfer])
        await accounts.until_lock_waiters(source)
        assert await transfers.cancel_batch(batch_id)
        await until_every_step(transfers, batch_id, "refunding")
    outcome = await asyncio.wait_for(transfers.batch_outcome(batch_id), 30)

    assert ends(outcome) == [("FAILED", "cancelled", "Cancelled")]
    assert await accounts.balance(source) == 1_000


async def test_a_batch_cancelled_before_its_credits_refunds_the_debited(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(shard=1)
    batch = [request_for(source, target, amount) for amount in (100, 200)]

    async with accounts.row_locked(target):  # the credits wait for the row
        batch_id = await transfers.start_batch(batch)
        await accounts.until_lock_waiters(target)
        await client.get_workflow_handle(batch_workflow_id(batch_id)).cancel()
        # released once the cancellation is seen: the fences wait for the row too
        running = await until_every_step(transfers, batch_id, "settling-credit")
    outcome = await transfers.batch_outcome(batch_id)

    assert {t.status for t in running.transfers} == {TransferStatus.DEBITED}
    assert ends(outcome) == [("COMPENSATED", "refunded", "Cancelled")] * 2
    assert await accounts.balance(source) == 1_000
    assert await accounts.balance(target) == 0


async def test_a_transfer_is_found_inside_its_batch(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(shard=1)
    batch = [request_for(source, target, 100), request_for(source, target, 5_000)]
    outcome = await transfers.submit_batch(batch)

    found = await transfers.find_batch(batch[1].transfer_id)

    assert found == (outcome.batch_id, batch[1], by_id(outcome, batch[1].transfer_id))
    assert await transfers.find_batch(accounts.new_id("t-nowhere")) is None
    assert [t.status for t in outcome.transfers] == [C, F]
