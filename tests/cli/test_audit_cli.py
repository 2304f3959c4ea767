"""`transfers audit`: totals per currency in major units; exit 1 when money is not conserved."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import update

from shards.ledger import Ledger
from shards.router import ShardRouter
from shards.schema import accounts
from tests.cli.conftest import Cli

NewId = Callable[[str], str]


@pytest.fixture
async def tampered_account(router: ShardRouter, new_id: NewId) -> AsyncIterator[str]:
    """An account whose balance was raised behind the ledger's back, put right afterwards so
    the shared shards stay consistent for the other tests."""
    ledger = Ledger(router)
    account = new_id("acc")
    await ledger.open_account(account, "USD")
    await ledger.deposit(new_id("dep"), account, 1_00, "USD")

    async def set_balance(balance: int) -> None:
        async with router.shard_for(account).begin() as connection:
            statement = update(accounts).where(accounts.c.account_id == account)
            await connection.execute(statement.values(balance=balance))

    await set_balance(1_000_00)
    try:
        yield account
    finally:
        await set_balance(1_00)


async def test_audit_reports_totals_in_major_units(
    cli: Cli, router: ShardRouter, new_id: NewId
) -> None:
    ledger = Ledger(router)
    account = new_id("jpy")
    await ledger.open_account(account, "JPY")
    await ledger.deposit(new_id("dep"), account, 1234, "JPY")

    result = cli("audit", "--json")
    report = result.json()
    assert result.exit_code == (0 if report["ok"] else 1)
    yen = report["currencies"]["JPY"]
    assert set(yen) == {"balances", "held", "in_flight", "deposits", "withdrawals", "conserved"}
    assert int(yen["deposits"]) >= 1234  # JPY has no decimals
    assert set(report["accounts_by_shard"]) == {str(index) for index in range(len(router.shards))}


async def test_audit_exits_1_and_names_a_tampered_account(cli: Cli, tampered_account: str) -> None:
    result = cli("audit", "--json")
    assert result.exit_code == 1
    report = result.json()
    assert not report["ok"]
    assert report["currencies"]["USD"]["conserved"] is False
    assert tampered_account in report["account_mismatches"]
    people = cli("audit")
    assert people.exit_code == 1
    assert tampered_account in people.stdout
