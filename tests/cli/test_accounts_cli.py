"""`transfers accounts ...` against real shards: amounts in major units, exit codes, --json shapes.

Each CLI run costs a Python start-up, so the scene is set through the Ledger and only the
behaviour under test goes through the command line.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shards.ledger import Ledger
from shards.router import ShardRouter
from shards.schema import AccountStatus
from tests.shards.support import ids_on_shard
from tests.support.cli_runs import Cli, CliMany, assert_one_clean_line

NewId = Callable[[str], str]


@pytest.fixture
def ledger(router: ShardRouter) -> Ledger:
    return Ledger(router)


def test_open_deposit_withdraw_show_in_major_units(cli: Cli, new_id: NewId) -> None:
    account = new_id("acc")
    assert cli("accounts", "open", account, "--currency", "usd").exit_code == 0
    deposit = cli("accounts", "deposit", account, "12.34", "--json").json()
    assert (deposit["amount"], deposit["currency"]) == ("12.34", "USD")
    assert deposit["id"].startswith("dep-")
    withdrawal = cli("accounts", "withdraw", account, "2.3", "--json").json()
    assert (withdrawal["amount"], withdrawal["balance_after"]) == ("2.30", "10.04")
    assert withdrawal["id"].startswith("wd-")

    shown = cli("accounts", "show", account, "--json").json()
    assert isinstance(shown.pop("shard"), int)
    assert shown == {
        "account_id": account,
        "currency": "USD",
        "balance": "10.04",
        "held": "0.00",
        "available": "10.04",
        "status": "open",
        "version": 3,
    }


async def test_amounts_follow_the_currency_exponent(
    cli: Cli, ledger: Ledger, new_id: NewId
) -> None:
    yen, dinar = new_id("jpy"), new_id("bhd")
    await ledger.open_account(yen, "JPY")
    await ledger.open_account(dinar, "BHD")
    assert cli("accounts", "deposit", yen, "1500", "--json").json()["balance_after"] == "1500"
    assert cli("accounts", "deposit", dinar, "1.234", "--json").json()["balance_after"] == "1.234"
    message = assert_one_clean_line(cli("accounts", "deposit", yen, "1.5"), exit_code=2)
    assert "JPY allows 0" in message


async def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    cli_many: CliMany, ledger: Ledger, new_id: NewId
) -> None:
    account = new_id("acc")
    await ledger.open_account(account, "USD")
    runs = [
        *(("accounts", "deposit", account, amount) for amount in ("12.345", "abc", "+1", "0.00")),
        ("accounts", "show", "not valid!"),
        ("accounts", "open", new_id("acc"), "--currency", "XYZ"),
        ("accounts", "open", new_id("acc"), "--currency", "DOLLARS"),
    ]
    for result in cli_many(runs):
        assert_one_clean_line(result, exit_code=2)
    assert (await ledger.get_account(account)).version == 1


async def test_a_deposit_id_applies_once(cli: Cli, ledger: Ledger, new_id: NewId) -> None:
    account, deposit_id = new_id("acc"), new_id("dep")
    await ledger.open_account(account, "USD")
    first = cli("accounts", "deposit", account, "5", "--id", deposit_id, "--json").json()
    again = cli("accounts", "deposit", account, "5", "--id", deposit_id, "--json").json()
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert (await ledger.get_account(account)).balance == 500


async def test_refusals_exit_1_with_the_error_type(cli: Cli, ledger: Ledger, new_id: NewId) -> None:
    missing = cli("accounts", "show", new_id("missing"), "--json")
    assert (missing.exit_code, missing.json()["error"]["type"]) == (1, "AccountNotFound")
    assert_one_clean_line(cli("accounts", "show", new_id("missing")), exit_code=1)

    account = new_id("acc")
    await ledger.open_account(account, "USD")
    await ledger.deposit(new_id("dep"), account, 100, "USD")
    overdraw = cli("accounts", "withdraw", account, "1.01", "--json")
    assert (overdraw.exit_code, overdraw.json()["error"]["type"]) == (1, "InsufficientFunds")
    other_currency = cli("accounts", "open", account, "--currency", "EUR", "--json")
    assert other_currency.json()["error"]["type"] == "AccountAlreadyExists"


async def test_freeze_unfreeze_and_close(cli: Cli, ledger: Ledger, new_id: NewId) -> None:
    account = new_id("acc")
    await ledger.open_account(account, "USD")
    await ledger.deposit(new_id("dep"), account, 300, "USD")
    assert cli("accounts", "freeze", account, "--json").json()["status"] == "frozen"
    assert cli("accounts", "unfreeze", account, "--json").json()["status"] == "open"
    not_empty = cli("accounts", "close", account, "--json")
    assert (not_empty.exit_code, not_empty.json()["error"]["type"]) == (1, "AccountNotEmpty")
    await ledger.withdraw(new_id("wd"), account, 300, "USD")
    assert cli("accounts", "close", account, "--json").json()["status"] == "closed"
    assert (await ledger.get_account(account)).status == AccountStatus.CLOSED


async def test_list_shows_accounts_of_every_shard(
    cli: Cli, ledger: Ledger, router: ShardRouter, new_id: NewId
) -> None:
    shards = range(len(router.shards))
    assert len(shards) > 1  # else "every shard" is one
    # two accounts on each shard, chosen by the router's own function: none is left to chance
    on_shard = {shard: ids_on_shard(router, new_id, shard, 2) for shard in shards}
    opened = {account for accounts in on_shard.values() for account in accounts}
    for account in opened:
        await ledger.open_account(account, "EUR")
    listed = cli("accounts", "list", "--limit", "100000", "--json").json()["accounts"]
    mine = [account for account in listed if account["account_id"] in opened]
    assert {account["account_id"] for account in mine} == opened
    assert {(account["shard"], account["account_id"]) for account in mine} == {
        (shard, account) for shard, accounts in on_shard.items() for account in accounts
    }
    assert {account["balance"] for account in mine} == {"0.00"}
