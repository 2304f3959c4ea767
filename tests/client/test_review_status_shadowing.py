"""Review probes (issue 16): `transfers status TRANSFER_ID` (client.status, then find_batch) must
report what the transfer id's entries say, not a later request that was refused for that id."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.workers import Accounts
from transfers.client import TransfersClient
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")


async def test_status_of_a_transfer_completed_in_a_batch_ignores_a_later_refused_request(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(shard=1)
    first = request_for(source, target, 100)
    other = first.model_copy(update={"amount": 200})  # the same id, another request
    done = await transfers.submit_batch([first])
    refused = await transfers.submit_batch([other])
    assert done.transfers[0].status == TransferStatus.COMPLETED
    assert refused.transfers[0].status == TransferStatus.FAILED  # refused at its claim

    member = await transfers.find_batch(first.transfer_id)

    assert member is not None
    assert member.outcome.status == TransferStatus.COMPLETED, member


async def test_status_of_a_transfer_completed_in_a_batch_ignores_a_later_single_request(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(shard=1)
    first = request_for(source, target, 100)
    other = first.model_copy(update={"amount": 200})
    await transfers.submit_batch([first])
    # a single transfer's second request is refused by the client, nothing started; here not
    single = await transfers.submit(other)
    assert single.status == TransferStatus.FAILED

    status = await transfers.status(first.transfer_id)

    assert status.status == TransferStatus.COMPLETED, status
