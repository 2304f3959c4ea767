"""Fixtures for pending transfers, on top of tests/support/workers.py (real shards, a worker per
test): a request builder with a hold timeout, and a transfer already HELD."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.support.workers import Accounts
from transfers.client import TransfersClient
from workflows.models import PendingTransferRequest, TransferRequest, TransferStatus

PendingFor = Callable[..., PendingTransferRequest]


@pytest.fixture
def pending_for(request_for: Callable[..., TransferRequest]) -> PendingFor:
    """`pending_for(source, target, amount, timeout_s=60)`: a request with a fresh transfer id."""

    def build(
        source: str, target: str, amount: int, timeout_s: float = 60
    ) -> PendingTransferRequest:
        transfer = request_for(source, target, amount)
        return PendingTransferRequest(**transfer.model_dump(), timeout_s=timeout_s)

    return build


Held = Callable[..., Awaitable[PendingTransferRequest]]


@pytest.fixture
def held(transfers: TransfersClient, accounts: Accounts, pending_for: PendingFor) -> Held:
    """`await held(400)`: a HELD transfer of 400 from a fresh account holding 1 000 to a fresh
    empty one; `balance`, `shards` (source, target) and `timeout_s` can be chosen."""

    async def place(
        amount: int,
        *,
        balance: int = 1_000,
        shards: tuple[int, int] = (0, 1),
        timeout_s: float = 60,
    ) -> PendingTransferRequest:
        source = await accounts.open(balance, shard=shards[0])
        target = await accounts.open(0, shard=shards[1])
        request = pending_for(source, target, amount, timeout_s)
        outcome = await transfers.submit_pending(request)
        assert outcome.status == TransferStatus.HELD, outcome
        return request

    return place
