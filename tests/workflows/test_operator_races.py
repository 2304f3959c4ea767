"""An operator's resolve while its marker step is still being applied: the transfer no longer
reads as stuck, and no other decision is taken meanwhile (found by review)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from temporalio.client import Client

from tests.support.stuck_refunds import stuck_refund
from tests.support.workers import Accounts
from transfers.client import RefundNotStuck, TransfersClient
from workflows.models import TransferRequest, TransferStatus, TransferStep

pytestmark = [pytest.mark.usefixtures("worker"), pytest.mark.races]


async def test_a_resolve_not_yet_recorded_reads_as_resolving(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """`resolve --no-wait` returns while the marker step waits for the source's row: the
    transfer says `resolving`, not `refund-stuck` (which the CLI reports as a failure)."""
    request = await stuck_refund(transfers, client, accounts, request_for)
    async with accounts.row_locked(request.source_account_id):  # the marker step waits
        outcome = await transfers.resolve(request.transfer_id, "paid by wire #1", wait=False)
        assert (outcome.status, outcome.step) == (
            TransferStatus.COMPENSATING,
            TransferStep.RESOLVING,
        )


async def test_no_other_decision_while_a_resolve_is_applied(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    request = await stuck_refund(transfers, client, accounts, request_for)
    async with accounts.row_locked(request.source_account_id):
        await transfers.resolve(request.transfer_id, "paid by wire #1", wait=False)
        with pytest.raises(RefundNotStuck, match=TransferStep.RESOLVING):
            await transfers.retry_refund(request.transfer_id)
        with pytest.raises(RefundNotStuck, match=TransferStep.RESOLVING):
            await transfers.resolve(request.transfer_id, "other note")
    for _ in range(150):
        outcome = await transfers.status(request.transfer_id)
        if outcome.status.final:
            break
        await asyncio.sleep(0.2)
    assert (outcome.status, outcome.step) == (TransferStatus.COMPENSATED, "resolved-by-operator")
    assert outcome.error is not None
    assert "paid by wire #1" in outcome.error.message
    assert "other note" not in outcome.error.message
