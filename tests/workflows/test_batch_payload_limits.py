"""A batch of MAX_BATCH_SIZE stays clear of Temporal's limits: every payload of its history under
the 512 KB warning, the history far below 50 MB and 51,200 events (numbers in README "Batches")."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from temporalio.client import Client

from tests.support.workers import Accounts
from transfers.client import TransfersClient
from workflows.batch_models import MAX_BATCH_SIZE, batch_workflow_id
from workflows.models import TransferRequest

pytestmark = pytest.mark.usefixtures("worker")

PAYLOAD_WARNING = 512 * 1024


@pytest.mark.parametrize("size", [100, 1_000, MAX_BATCH_SIZE])
async def test_a_full_batch_stays_clear_of_temporal_limits(
    size: int,
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    sources = [await accounts.open(10**9, shard=shard) for shard in (0, 1, 2)]
    targets = [await accounts.open(shard=shard) for shard in (0, 1, 2)]
    batch = [request_for(sources[n % 3], targets[(n + 1) % 3], 100 + n) for n in range(size)]

    started = time.perf_counter()
    outcome = await transfers.submit_batch(batch)
    took = time.perf_counter() - started
    history = await client.get_workflow_handle(batch_workflow_id(outcome.batch_id)).fetch_history()
    # an event's size bounds the payloads it carries (input, a step's result, the result)
    sizes = [len(event.SerializeToString()) for event in history.events]
    total = sum(sizes)

    print(  # with -s: the measurement README "Batches" quotes
        f"\nbatch of {size}: {took:.2f} s, {len(history.events)} events, "
        f"history {total / 1024:.0f} KB, largest event {max(sizes) / 1024:.0f} KB"
    )
    assert outcome.counts["COMPLETED"] == size
    assert max(sizes) < PAYLOAD_WARNING
    assert total < 2 * 1024 * 1024
    assert len(history.events) < 100
