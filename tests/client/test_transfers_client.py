"""The Python API: idempotent submission, status, list, cancel, and what the Web UI shows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from temporalio.client import Client

from shards.errors import IdempotencyConflict
from tests.support.workers import Accounts, eventually, wait_for_step
from transfers.client import TransferNotFound, TransfersClient, workflow_id
from workflows.models import TransferRequest, TransferStatus
from workflows.search_attributes import (
    AMOUNT,
    CURRENCY,
    SOURCE_ACCOUNT_ID,
    TARGET_ACCOUNT_ID,
    TRANSFER_STATUS,
)

pytestmark = pytest.mark.usefixtures("worker")


async def test_ten_concurrent_submissions_debit_once(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    source = await accounts.open(10_000, shard=0)
    target = await accounts.open(0, shard=1)
    request = request_for(source, target, 700)

    outcomes = await asyncio.gather(*(transfers.submit(request) for _ in range(10)))

    assert {outcome.status for outcome in outcomes} == {TransferStatus.COMPLETED}
    assert len({outcome.entries for outcome in outcomes}) == 1  # one run, one set of entries
    assert (await accounts.balance(source), await accounts.balance(target)) == (9_300, 700)


async def test_resubmitting_a_finished_transfer_returns_its_outcome(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    source = await accounts.open(1_000, shard=1)
    request = request_for(source, await accounts.open(0, shard=2), 100)
    first = await transfers.submit(request)

    assert await transfers.submit(request) == first
    assert await transfers.submit(request, wait=False) == first
    assert await accounts.balance(source) == 900


async def test_same_id_with_other_fields_is_refused(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    source = await accounts.open(1_000, shard=0)
    request = request_for(source, await accounts.open(0, shard=2), 100)
    await transfers.submit(request)

    with pytest.raises(IdempotencyConflict, match=r"amount 100 \(now 999\)"):
        await transfers.submit(request.model_copy(update={"amount": 999}))
    assert await accounts.balance(source) == 900


async def test_status_mid_flight_then_final(
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(0, shard=1)
    request = request_for(source, target, 100)

    async with accounts.row_locked(target):  # the credit waits
        submitted = await transfers.submit(request, wait=False)
        handle = client.get_workflow_handle(workflow_id(request.transfer_id))
        await wait_for_step(handle, "crediting")
        mid_flight = await transfers.status(request.transfer_id)
        description = await handle.describe()
        # while the lock holds: once released, the credit lands within milliseconds
        metadata = await handle.query("__temporal_workflow_metadata")

    assert submitted.status in {TransferStatus.RUNNING, TransferStatus.DEBITED}
    assert (mid_flight.status, mid_flight.step) == (TransferStatus.DEBITED, "crediting")
    assert [entry.kind for entry in mid_flight.entries] == ["debit"]
    attributes = description.typed_search_attributes
    assert attributes.get(TRANSFER_STATUS) == "DEBITED"
    assert (attributes.get(SOURCE_ACCOUNT_ID), attributes.get(TARGET_ACCOUNT_ID)) == (
        source,
        target,
    )
    assert (attributes.get(AMOUNT), attributes.get(CURRENCY)) == (100, "USD")
    assert await description.static_summary() == f"1.00 USD {source} -> {target}"
    assert "crediting" in metadata.current_details

    await handle.result()
    final = await transfers.status(request.transfer_id)
    assert (final.status, final.step) == (TransferStatus.COMPLETED, "completed")


async def test_list_by_status(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    source = await accounts.open(1_000, shard=2)
    completed = request_for(source, await accounts.open(0, shard=0), 250)
    failed = request_for(source, await accounts.open(0, shard=1), 5_000)
    await transfers.submit(completed)
    await transfers.submit(failed)

    async def listed(status: TransferStatus) -> set[str]:
        return {summary.transfer_id for summary in await transfers.list(status, limit=1000)}

    # visibility is eventually consistent
    await eventually(lambda: listed(TransferStatus.COMPLETED), completed.transfer_id)
    await eventually(lambda: listed(TransferStatus.FAILED), failed.transfer_id)
    assert failed.transfer_id not in await listed(TransferStatus.COMPLETED)
    [summary] = [s for s in await transfers.list() if s.transfer_id == completed.transfer_id]
    assert (summary.source, summary.amount, summary.currency) == (source, 250, "USD")


async def test_unknown_transfer(transfers: TransfersClient) -> None:
    with pytest.raises(TransferNotFound):
        await transfers.status("never-submitted")
    with pytest.raises(TransferNotFound):
        await transfers.cancel("never-submitted")


async def test_cancel_after_the_end_changes_nothing(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    source = await accounts.open(1_000, shard=0)
    request = request_for(source, await accounts.open(0, shard=1), 100)
    await transfers.submit(request)

    assert await transfers.cancel(request.transfer_id) is False
    assert (await transfers.status(request.transfer_id)).status == TransferStatus.COMPLETED


def test_ui_link(transfers: TransfersClient) -> None:
    assert (
        transfers.ui_link("t-1")
        == "http://localhost:8233/namespaces/default/workflows/transfer-t-1"
    )
