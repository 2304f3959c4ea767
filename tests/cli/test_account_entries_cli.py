"""`transfers accounts entries`: an account's statement through the command line, page by page."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from shards.ledger import Ledger
from shards.router import ShardRouter
from shards.statements import encode_cursor
from tests.support.cli_runs import Cli, assert_one_clean_line
from tests.support.statements import SIGN

NewId = Callable[[str], str]


@pytest.fixture
def ledger(router: ShardRouter) -> Ledger:
    return Ledger(router)


async def _dinar_account(ledger: Ledger, new_id: NewId) -> str:
    """A BHD account (three decimals) with seven entries, a refund marker among them."""
    account, other = new_id("acc"), new_id("acc")
    await ledger.open_account(account, "BHD")
    await ledger.open_account(other, "BHD")
    await ledger.deposit(new_id("dep"), account, 10_000)
    # Whole transfers with `other` (the suite's shards are shared: an audit later must balance).
    paid_out, paid_in = new_id("t"), new_id("t")
    await ledger.debit(paid_out, account, 1_250)
    await ledger.credit(paid_out, other, 1_250)
    await ledger.debit(paid_in, other, 5)
    await ledger.credit(paid_in, account, 5)
    await ledger.refund(new_id("t"), account, 300)  # nothing was debited: a marker
    await ledger.withdraw(new_id("wd"), account, 999)
    refunded = new_id("t")
    await ledger.debit(refunded, account, 2_000)
    await ledger.refund(refunded, account, 2_000)
    return account


def _pages(cli: Cli, account: str, limit: int) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    cursor: list[str] = []
    while True:
        result = cli("accounts", "entries", account, "--limit", str(limit), *cursor, "--json")
        assert result.exit_code == 0, result
        pages.append(result.json())
        if pages[-1]["next_cursor"] is None:
            return pages
        cursor = ["--before", pages[-1]["next_cursor"]]


async def test_pages_list_every_entry_once_newest_first_and_balances_add_up(
    cli: Cli, ledger: Ledger, new_id: NewId
) -> None:
    account = await _dinar_account(ledger, new_id)

    pages = _pages(cli, account, limit=3)

    assert [len(page["entries"]) for page in pages] == [3, 3, 1]
    assert {(page["account_id"], page["currency"]) for page in pages} == {(account, "BHD")}
    statement = [entry for page in pages for entry in page["entries"]]
    assert set(statement[0]) == {
        "created_at",
        "kind",
        "transfer_id",
        "amount",
        "balance_after",
        "marker",
    }
    assert [(e["kind"], e["amount"], e["marker"]) for e in statement] == [
        ("refund", "2.000", False),
        ("debit", "2.000", False),
        ("withdrawal", "0.999", False),
        ("refund", "0.300", True),
        ("credit", "0.005", False),
        ("debit", "1.250", False),
        ("deposit", "10.000", False),
    ]
    assert len({(e["transfer_id"], e["kind"]) for e in statement}) == len(statement)
    times = [e["created_at"] for e in statement]
    assert times == sorted(times, reverse=True)
    assert all(time.endswith("+00:00") for time in times)
    balance = Decimal(0)
    for entry in reversed(statement):
        balance += 0 if entry["marker"] else SIGN[entry["kind"]] * Decimal(entry["amount"])
        assert Decimal(entry["balance_after"]) == balance, entry
    assert (
        f"{balance:.3f}" == "7.756" == cli("accounts", "show", account, "--json").json()["balance"]
    )


async def test_people_see_a_table_and_how_to_ask_for_older_entries(
    cli: Cli, ledger: Ledger, new_id: NewId
) -> None:
    account = await _dinar_account(ledger, new_id)

    first = cli("accounts", "entries", account, "--limit", "2")

    assert first.exit_code == 0, first
    assert f"{account} (BHD), newest first" in first.stdout
    assert "2.000 BHD" in first.stdout
    assert "7.756 BHD" in first.stdout  # the newest balance after
    cursor = first.stdout.strip().splitlines()[-1].removeprefix("older entries: --before ")
    rest = cli("accounts", "entries", account, "--before", cursor, "--json").json()
    assert [e["kind"] for e in rest["entries"]] == [
        "withdrawal",
        "refund",
        "credit",
        "debit",
        "deposit",
    ]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("arguments", "exit_code", "expected"),
    [
        (("--before", "garbage"), 2, "is not one that a statement page returned"),
        (("--before", encode_cursor(5) + "x"), 2, "is not one that a statement page returned"),
        (("--limit", "0"), 2, "--limit"),
        (("--limit", "1001"), 2, "--limit"),
    ],
)
async def test_bad_paging_input_is_refused_with_exit_2(
    cli: Cli,
    ledger: Ledger,
    new_id: NewId,
    arguments: tuple[str, ...],
    exit_code: int,
    expected: str,
) -> None:
    account = new_id("acc")
    await ledger.open_account(account, "USD")

    result = cli("accounts", "entries", account, *arguments, "--json")

    assert result.exit_code == exit_code, result
    assert expected in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_account_fails_with_one_line(cli: Cli, new_id: NewId) -> None:
    account = new_id("acc")

    line = assert_one_clean_line(cli("accounts", "entries", account), exit_code=1)

    assert line == f"error: account {account} does not exist"
