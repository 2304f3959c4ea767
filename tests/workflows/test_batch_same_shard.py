"""Same-shard pairs inside a batch: a debit and then a credit on one shard, not one transaction as
a single transfer's. So a credit refused there is refunded: COMPENSATED, where a single transfer
between the same accounts ends FAILED with nothing moved (README "Batches")."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.batch_settlement import assert_transfers_settled, entries_by_transfer
from tests.support.workers import Accounts, error_type
from tests.workflows.test_batch import ends
from transfers.client import TransfersClient
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")


async def test_same_shard_pairs_of_a_batch_complete_or_are_refunded(
    transfers: TransfersClient, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    payer = await accounts.open(1_000, shard=2)
    payee = await accounts.open(50, shard=2)
    poor = await accounts.open(10, shard=2)
    frozen = await accounts.open(shard=2)
    closed = await accounts.open(shard=2)
    euro = await accounts.open(shard=2, currency="EUR")
    elsewhere = await accounts.open(shard=0)
    await accounts.freeze(frozen)
    await accounts.close(closed)
    batch = [
        request_for(payer, payee, 100),  # completed
        request_for(payee, payer, 120),  # its debit sees 50: the credit above comes later
        request_for(payee, payer, 40),  # completed
        request_for(payer, frozen, 200),  # credit refused on the payer's shard: refunded
        request_for(payer, closed, 300),  # the same
        request_for(payer, euro, 5),  # the same, for its currency
        request_for(poor, payee, 11),  # debit refused
        request_for(payer, elsewhere, 395),  # all the debits above left: refunds come later
    ]

    outcome = await transfers.submit_batch(batch)
    lone = request_for(payer, frozen, 1)
    single = await transfers.submit(lone)

    assert ends(outcome) == [
        ("COMPLETED", "completed", None),
        ("FAILED", "debit-refused", "InsufficientFunds"),
        ("COMPLETED", "completed", None),
        ("COMPENSATED", "refunded", "AccountNotOpen"),
        ("COMPENSATED", "refunded", "AccountNotOpen"),
        ("COMPENSATED", "refunded", "CurrencyMismatch"),
        ("FAILED", "debit-refused", "InsufficientFunds"),
        ("COMPLETED", "completed", None),
    ]
    # one transaction in a single transfer: refused whole, nothing taken, nothing to refund
    assert (single.status, error_type(single)) == (TransferStatus.FAILED, "AccountNotOpen")
    refused_credits = await entries_by_transfer(
        accounts.ledger, [r.transfer_id for r in batch[3:6]]
    )
    assert len(refused_credits) == 3
    for rows in refused_credits.values():  # the credit fenced out before the refund
        assert sorted((row.kind, row.marker) for row in rows) == [
            ("credit", True),
            ("debit", False),
            ("refund", False),
        ]
    balances = await assert_transfers_settled(
        accounts.ledger,
        [*batch, lone],
        [*outcome.transfers, single],
        held_before={payer: 1_000, payee: 50, poor: 10}
        | dict.fromkeys([frozen, closed, euro, elsewhere], 0),
    )
    assert balances[payer] == 1_000 - 100 + 40 - 395
