"""Batches and single transfers racing through Temporal on one hot account, out of it and into it,
some across shards and some within its shard: no deadlock, no overdraft, and the account ends at
its opening balance plus the credits minus the debits of the transfers that completed."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest
from sqlalchemy import text

from shards.router import ShardRouter
from tests.shards.test_ledger_races import deadlocks
from tests.support.batch_settlement import assert_transfers_settled
from tests.support.statements import recomputed_balance
from tests.support.workers import Accounts, error_type
from transfers.client import TransfersClient
from workflows.models import TransferOutcome, TransferRequest, TransferStatus

pytestmark = [pytest.mark.races, pytest.mark.usefixtures("worker")]

HOT, OTHER = 2_000, 500
BATCH = 40


async def _lowest_balance_after(accounts: Accounts, account_id: str) -> int:
    """The lowest balance any entry of the account left: below zero is an overdraft."""
    shard = accounts.ledger.router.shard_for(account_id)
    query = text("SELECT min(balance_after) FROM entries WHERE account_id = :account_id")
    async with shard.engine.connect() as connection:
        return int(await connection.scalar(query, {"account_id": account_id}))


async def test_batches_and_single_transfers_on_one_hot_account(
    transfers: TransfersClient,
    accounts: Accounts,
    worker_router: ShardRouter,
    request_for: Callable[..., TransferRequest],
) -> None:
    chooser = random.Random(16)
    hot = await accounts.open(HOT, shard=0)
    neighbour = await accounts.open(OTHER, shard=0)  # same shard: same-shard pairs both ways
    others = [neighbour] + [await accounts.open(OTHER, shard=n % 3) for n in range(8)]

    def out_of_hot() -> TransferRequest:
        return request_for(hot, chooser.choice(others), chooser.randint(1, 40))

    def into_hot() -> TransferRequest:
        return request_for(chooser.choice(others), hot, chooser.randint(1, 40))

    batches = [[out_of_hot() for _ in range(BATCH)] for _ in range(6)]
    batches += [[into_hot() for _ in range(BATCH)] for _ in range(3)]
    singles = [out_of_hot() for _ in range(60)] + [into_hot() for _ in range(30)]
    deadlocks_before = await deadlocks(worker_router)

    async def batch(requests: list[TransferRequest]) -> tuple[TransferOutcome, ...]:
        return (await transfers.submit_batch(requests)).transfers

    async def single(request: TransferRequest) -> tuple[TransferOutcome, ...]:
        return (await transfers.submit(request),)

    flows = [batch(requests) for requests in batches] + [single(r) for r in singles]
    chooser.shuffle(flows)
    ended = await asyncio.wait_for(asyncio.gather(*flows), timeout=120)

    assert await deadlocks(worker_router) == deadlocks_before
    requests = [r for requests in batches for r in requests] + singles
    by_id = {outcome.transfer_id: outcome for outcomes in ended for outcome in outcomes}
    outcomes = [by_id[request.transfer_id] for request in requests]
    # the hot account, recomputed from each transfer's outcome
    completed = [r for r, o in zip(requests, outcomes, strict=True) if o.status == "COMPLETED"]
    credits = sum(r.amount for r in completed if r.target_account_id == hot)
    debits = sum(r.amount for r in completed if r.source_account_id == hot)
    assert await accounts.balance(hot) == HOT + credits - debits
    balances = await assert_transfers_settled(
        accounts.ledger,
        requests,
        outcomes,
        held_before={hot: HOT} | dict.fromkeys(others, OTHER),
    )
    assert balances[hot] == HOT + credits - debits
    assert await recomputed_balance(accounts.ledger, hot) == balances[hot]
    assert await _lowest_balance_after(accounts, hot) >= 0
    # the race was real: the hot account ran short, so some debits were refused
    refused = [
        outcome.status
        for request, outcome in zip(requests, outcomes, strict=True)
        if request.source_account_id == hot and error_type(outcome) == "InsufficientFunds"
    ]
    assert refused
    assert set(refused) == {TransferStatus.FAILED}
