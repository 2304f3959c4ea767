"""The audit catches what it claims to: each breakage, written with raw SQL in a currency of its
own, is named with its problem, and a clean transfer draws no finding.

The shards are shared with the other tests, so these assert on their own transfers, accounts and
currency, never on the whole report's verdict being clean."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shards.audit import INFLOWS, AuditReport, CurrencyTotals, run_audit
from shards.ledger import Ledger
from shards.router import ShardRouter
from tests.shards.breakage import Breakage, throwaway_currency
from tests.shards.support import NewId, id_on_other_shard

FUNDS = 1000
AMOUNT = 400


@pytest.fixture
async def broken(router: ShardRouter) -> AsyncIterator[Breakage]:
    breakage = Breakage(router, throwaway_currency())
    try:
        yield breakage
    finally:
        await breakage.clean_up()


def totals(report: AuditReport, breakage: Breakage) -> CurrencyTotals:
    return report.currencies[breakage.currency]


async def test_a_credit_without_a_debit_is_named(broken: Breakage, new_id: NewId) -> None:
    target = await broken.account(new_id("acc"))
    transfer = new_id("t")
    await broken.entry(transfer, "credit", target, AMOUNT)

    report = await run_audit(broken.router)

    assert report.contradictions[transfer] == "credited without a debit"
    assert totals(report, broken) == CurrencyTotals(balances=AMOUNT)
    assert not totals(report, broken).conserved


async def test_a_transfer_both_credited_and_refunded_is_named(
    broken: Breakage, new_id: NewId
) -> None:
    source = await broken.account(new_id("acc"), FUNDS)
    target = await broken.account(id_on_other_shard(broken.router, new_id, source))
    transfer = new_id("t")
    for kind, account in (("debit", source), ("credit", target), ("refund", source)):
        await broken.entry(transfer, kind, account, AMOUNT)

    report = await run_audit(broken.router)

    assert report.contradictions[transfer] == "both credited and refunded"
    assert totals(report, broken) == CurrencyTotals(balances=FUNDS + AMOUNT, deposits=FUNDS)


async def test_a_credit_of_another_amount_than_the_debit_is_named(
    broken: Breakage, new_id: NewId
) -> None:
    source = await broken.account(new_id("acc"), FUNDS)
    target = await broken.account(id_on_other_shard(broken.router, new_id, source))
    transfer = new_id("t")
    await broken.entry(transfer, "debit", source, AMOUNT)
    await broken.entry(transfer, "credit", target, AMOUNT - 100)

    report = await run_audit(broken.router)

    assert report.contradictions[transfer] == "credit of 300 does not match the debit of 400"
    assert totals(report, broken) == CurrencyTotals(balances=FUNDS - 100, deposits=FUNDS)


# The kinds written twice, on accounts of two shards, and the one entry that completes the pair.
TWICE = {
    "two debits": (("debit", "debit"), "credit", "debit/capture"),
    "a debit and a capture": (("debit", "capture"), "credit", "debit/capture"),
    "two credits": (("credit", "credit"), "debit", "credit"),
    "two refunds": (("refund", "refund"), "debit", "refund"),
}


@pytest.mark.parametrize("case", TWICE)
async def test_a_kind_twice_on_two_shards_is_named(
    broken: Breakage, new_id: NewId, case: str
) -> None:
    kinds, other_kind, label = TWICE[case]
    first = await broken.account(new_id("acc"), FUNDS)
    second = await broken.account(id_on_other_shard(broken.router, new_id, first), FUNDS)
    other = await broken.account(new_id("acc"), FUNDS)
    transfer = new_id("t")
    for kind, account in zip(kinds, (first, second), strict=True):
        await broken.entry(transfer, kind, account, AMOUNT)
    await broken.entry(transfer, other_kind, other, AMOUNT)

    report = await run_audit(broken.router)

    problem = report.contradictions[transfer]
    assert problem.startswith(f"2 {label} entries: ")
    for kind, account in zip(kinds, (first, second), strict=True):
        shard = broken.router.index_for(account)
        assert f"{kind} of {AMOUNT} on {account} (shard {shard})" in problem
    signed = sum(AMOUNT if kind in INFLOWS else -AMOUNT for kind in (*kinds, other_kind))
    assert totals(report, broken) == CurrencyTotals(balances=3 * FUNDS + signed, deposits=3 * FUNDS)
    assert not totals(report, broken).conserved


async def test_held_unequal_to_the_active_holds_names_the_account(
    broken: Breakage, new_id: NewId
) -> None:
    held_without_hold = await broken.account(new_id("acc"), FUNDS)
    await broken.set_held(held_without_hold, 300)
    hold_not_held = await broken.account(new_id("acc"), FUNDS)
    await broken.hold(new_id("t"), hold_not_held, 200)

    report = await run_audit(broken.router)

    assert report.account_mismatches[held_without_hold] == (
        "balance 1000 vs entries 1000; held 300 vs holds 0"
    )
    assert report.account_mismatches[hold_not_held] == (
        "balance 1000 vs entries 1000; held 0 vs holds 200"
    )


async def test_money_moved_on_an_account_that_does_not_exist_is_named(
    broken: Breakage, new_id: NewId
) -> None:
    """Only a marker may name an account not opened (yet): no foreign key says so since 0006."""
    ghost = new_id("acc")
    await broken.unopened_entry(new_id("t"), "deposit", ghost)

    report = await run_audit(broken.router)

    assert report.account_mismatches[ghost] == (
        "1 entries move money on an account that does not exist"
    )


@pytest.mark.parametrize("taken", ["debit", "capture"])
async def test_money_in_flight_for_an_ended_transfer_is_stranded(
    broken: Breakage, new_id: NewId, taken: str
) -> None:
    source = await broken.account(new_id("acc"), FUNDS)
    ended, running = new_id("t"), new_id("t")
    await broken.entry(ended, taken, source, AMOUNT)
    await broken.entry(running, "debit", source, 100)
    asked: list[str] = []

    async def workflow_ended(transfer_ids: list[str]) -> set[str]:
        asked.extend(transfer_ids)
        return {ended, new_id("never-in-flight")}

    report = await run_audit(broken.router, workflow_ended=workflow_ended)

    assert {ended, running} <= set(asked)
    assert report.stranded[ended] == (
        f"{taken} of {AMOUNT} {broken.currency} minor units from {source}, "
        "neither credited nor refunded, and its workflow has ended"
    )
    assert running not in report.stranded
    assert not report.ok
    # Stranded money is still money in flight: the currency is conserved.
    assert totals(report, broken) == CurrencyTotals(
        balances=FUNDS - AMOUNT - 100, in_flight=AMOUNT + 100, deposits=FUNDS
    )
    assert totals(report, broken).conserved


async def test_when_idle_any_money_in_flight_is_stranded(broken: Breakage, new_id: NewId) -> None:
    source = await broken.account(new_id("acc"), FUNDS)
    transfer = new_id("t")
    await broken.entry(transfer, "debit", source, AMOUNT)

    unasked = await run_audit(broken.router)
    idle = await run_audit(broken.router, quiet=True)

    assert transfer not in unasked.stranded
    assert idle.stranded[transfer].endswith(
        "neither credited nor refunded, and no transfer is running"
    )


async def test_a_transfer_that_finishes_while_the_audit_asks_is_not_stranded(
    broken: Breakage, new_id: NewId
) -> None:
    source = await broken.account(new_id("acc"), FUNDS)
    target = await broken.account(id_on_other_shard(broken.router, new_id, source))
    transfer = new_id("t")
    await broken.entry(transfer, "debit", source, AMOUNT)

    async def credited_then_ended(transfer_ids: list[str]) -> set[str]:
        await broken.entry(transfer, "credit", target, AMOUNT)
        return {transfer}

    report = await run_audit(broken.router, workflow_ended=credited_then_ended)

    assert transfer not in report.stranded
    assert transfer not in report.contradictions


async def test_a_clean_transfer_draws_no_finding(broken: Breakage, new_id: NewId) -> None:
    source = await broken.account(new_id("acc"), FUNDS)
    target = await broken.account(id_on_other_shard(broken.router, new_id, source))
    transfer = new_id("t")
    ledger = Ledger(broken.router)
    await ledger.debit(transfer, source, AMOUNT, broken.currency)
    await ledger.credit(transfer, target, AMOUNT, broken.currency)

    async def all_ended(transfer_ids: list[str]) -> set[str]:
        return set(transfer_ids)

    for report in (
        await run_audit(broken.router, workflow_ended=all_ended),
        await run_audit(broken.router, quiet=True),
    ):
        assert transfer not in report.contradictions
        assert transfer not in report.stranded
        assert {source, target}.isdisjoint(report.account_mismatches)
        assert totals(report, broken) == CurrencyTotals(balances=FUNDS, deposits=FUNDS)
        assert totals(report, broken).conserved
