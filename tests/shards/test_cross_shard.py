"""The saga's steps on two shards through the Ledger, and what the audit sees between them."""

from __future__ import annotations

import pytest

from shards.audit import run_audit
from shards.errors import AccountNotOpen
from shards.ledger import Ledger
from shards.schema import AccountStatus
from tests.shards.support import NewId, id_on_other_shard, open_funded


async def _in_flight(ledger: Ledger, currency: str = "USD") -> int:
    report = await run_audit(ledger.router)
    totals = report.currencies[currency]
    assert totals.conserved
    return totals.in_flight


async def test_debit_on_one_shard_and_credit_on_another_moves_the_money(
    ledger: Ledger, new_id: NewId
) -> None:
    source = await open_funded(ledger, new_id("acc"), 100)
    target = await open_funded(ledger, id_on_other_shard(ledger.router, new_id, source), 5)
    transfer = new_id("t")
    in_flight_before = await _in_flight(ledger)

    await ledger.debit(transfer, source, 30, "USD")
    in_flight_between = await _in_flight(ledger)
    await ledger.credit(transfer, target, 30, "USD")

    assert in_flight_between == in_flight_before + 30  # debited, not yet credited: conserved
    assert await _in_flight(ledger) == in_flight_before
    assert (await ledger.get_account(source)).balance == 70
    assert (await ledger.get_account(target)).balance == 35
    assert transfer not in (await run_audit(ledger.router)).contradictions


@pytest.mark.parametrize("status", [AccountStatus.FROZEN, AccountStatus.CLOSED])
async def test_credit_refused_by_the_target_is_refunded_to_the_source(
    ledger: Ledger, new_id: NewId, status: AccountStatus
) -> None:
    source = await open_funded(ledger, new_id("acc"), 100)
    target = await open_funded(ledger, id_on_other_shard(ledger.router, new_id, source), 0)
    await ledger.set_status(target, status)
    transfer = new_id("t")
    in_flight_before = await _in_flight(ledger)

    await ledger.debit(transfer, source, 30, "USD")
    with pytest.raises(AccountNotOpen):
        await ledger.credit(transfer, target, 30, "USD")
    refund = await ledger.refund(transfer, source, 30, "USD")

    assert (refund.marker, refund.balance_after) == (False, 100)
    assert (await ledger.get_account(source)).balance == 100
    assert (await ledger.get_account(target)).balance == 0
    assert await _in_flight(ledger) == in_flight_before
    assert transfer not in (await run_audit(ledger.router)).contradictions


async def test_refund_reaches_a_source_frozen_since_the_debit(
    ledger: Ledger, new_id: NewId
) -> None:
    source = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")
    await ledger.debit(transfer, source, 30, "USD")
    await ledger.set_status(source, AccountStatus.FROZEN)

    await ledger.refund(transfer, source, 30, "USD")

    assert (await ledger.get_account(source)).balance == 100
