"""A transfer that ends FAILED on an unknown source reports its refund marker (or its hold's
release marker) once (found by the second review of 0006): the first refund writes the marker,
end_claim records the ending, and the saga settles once more, whose refund finds the marker
(`replayed`); the workflow records an entry once whether applied or found (record_once).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.lost_tasks import entries_of
from tests.support.pending_holds import PendingFor
from tests.support.workers import Accounts
from transfers.client import TransfersClient
from workflows.models import TransferOutcome, TransferRequest, TransferStatus

pytestmark = [pytest.mark.lost_tasks, pytest.mark.usefixtures("worker")]

AMOUNT = 400


def _reported(outcome: TransferOutcome, kind: str) -> list[tuple[str, str, int, bool]]:
    return [
        (entry.kind, entry.account_id, entry.amount, entry.marker)
        for entry in outcome.entries
        if entry.kind == kind
    ]


async def test_a_single_transfer_on_an_unknown_source_reports_its_refund_once(
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    source, target = accounts.id_on(0), await accounts.open(0, shard=1)
    outcome = await transfers.submit(request_for(source, target, AMOUNT))

    assert outcome.status == TransferStatus.FAILED, outcome
    on_shards = await entries_of(accounts.ledger, outcome.transfer_id)
    assert [r.kind for r in on_shards].count("refund") == 1, on_shards
    assert _reported(outcome, "refund") == [("refund", source, AMOUNT, True)], outcome.entries


async def test_a_pending_transfer_on_an_unknown_source_reports_its_release_once(
    transfers: TransfersClient, accounts: Accounts, pending_for: PendingFor
) -> None:
    source, target = accounts.id_on(0), await accounts.open(0, shard=1)
    outcome = await transfers.submit_pending(pending_for(source, target, AMOUNT), wait=True)

    assert outcome.status == TransferStatus.FAILED, outcome
    assert _reported(outcome, "release") == [("release", source, AMOUNT, True)], outcome.entries
