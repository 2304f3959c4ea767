"""`transfers audit`: totals per currency in major units; exit 1 when money is not conserved, or
when money is in flight for a transfer that has ended (asked of Temporal, or stated with --idle)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update
from temporalio.testing import WorkflowEnvironment

from shards.ledger import Ledger
from shards.router import ShardRouter
from shards.schema import accounts
from tests.shards.support import open_funded
from tests.support.cli_runs import Cli, CliResult, assert_one_clean_line, run_cli
from transfers.client import workflow_id
from transfers.devtools.embedded_pg import free_port
from workflows.models import TransferRequest

NewId = Callable[[str], str]
Debit = Callable[[], Awaitable[str]]
AMOUNT = 4_00  # EUR minor units


def minor_units(major: str) -> int:
    """'12.34' EUR as 1234 (EUR has two decimals)."""
    return int(Decimal(major).scaleb(2))


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


@pytest.fixture
async def debit(router: ShardRouter, new_id: NewId) -> AsyncIterator[Debit]:
    """Debits transfers and credits none of them (as if their workflows were lost); credited
    afterwards so that nothing stays in flight on the shared shards."""
    ledger = Ledger(router)
    source = await open_funded(ledger, new_id("acc"), 10 * AMOUNT, "EUR")
    target = await open_funded(ledger, new_id("acc"), 0, "EUR")
    debited: list[str] = []

    async def debit_one() -> str:
        transfer = new_id("t")
        await ledger.debit(transfer, source, AMOUNT, "EUR")
        debited.append(transfer)
        return transfer

    yield debit_one
    for transfer in debited:
        await ledger.credit(transfer, target, AMOUNT, "EUR")


def audit_with_temporal(
    cli_env: dict[str, str], tmp_path: Path, address: str, *args: str
) -> CliResult:
    return run_cli(("audit", *args), {**cli_env, "TEMPORAL_ADDRESS": address}, tmp_path)


async def test_audit_reports_the_exact_change_of_totals_in_major_units(
    cli: Cli, router: ShardRouter, new_id: NewId
) -> None:
    before = cli("audit", "--json", "--no-temporal").json()
    ledger = Ledger(router)
    await open_funded(ledger, new_id("acc"), 12_34, "EUR")

    result = cli("audit", "--json", "--no-temporal")

    report = result.json()
    assert result.exit_code == (0 if report["ok"] else 1)
    euro = report["currencies"]["EUR"]
    assert set(euro) == {
        "balances",
        "held",
        "in_flight",
        "written_off",
        "deposits",
        "withdrawals",
        "conserved",
    }
    assert re.fullmatch(r"\d+\.\d\d", euro["deposits"])  # EUR has two decimals
    was = before["currencies"].get("EUR", {"balances": "0.00", "deposits": "0.00"})
    for name in ("balances", "deposits"):
        assert minor_units(euro[name]) - minor_units(was[name]) == 12_34
    assert report["stranded"] == {}
    assert set(report["accounts_by_shard"]) == {str(index) for index in range(len(router.shards))}


async def test_audit_exits_1_and_names_a_tampered_account(cli: Cli, tampered_account: str) -> None:
    result = cli("audit", "--json", "--no-temporal")
    assert result.exit_code == 1
    report = result.json()
    assert not report["ok"]
    assert report["currencies"]["USD"]["conserved"] is False
    assert tampered_account in report["account_mismatches"]
    people = cli("audit", "--no-temporal")
    assert people.exit_code == 1
    assert tampered_account in people.stdout


async def test_idle_makes_money_in_flight_stranded_and_exits_1(cli: Cli, debit: Debit) -> None:
    transfer = await debit()

    result = cli("audit", "--json", "--idle")

    assert result.exit_code == 1
    stranded = result.json()["stranded"][transfer]
    assert stranded.startswith(f"debit of {AMOUNT} EUR minor units from acc-")
    assert stranded.endswith("neither credited nor refunded, and no transfer is running")
    people = cli("audit", "--idle")
    assert people.exit_code == 1
    assert f"transfer {transfer} stranded:" in people.stdout


async def test_audit_asks_temporal_which_transfers_have_ended(
    cli_env: dict[str, str],
    tmp_path: Path,
    temporal_env: WorkflowEnvironment,
    debit: Debit,
    new_id: NewId,
) -> None:
    unknown, running = await debit(), await debit()
    # Started on a queue no worker polls: its workflow stays running, its debit may yet move on.
    request = TransferRequest(
        transfer_id=running,
        source_account_id=new_id("acc"),
        target_account_id=new_id("acc"),
        amount=AMOUNT,
        currency="EUR",
    )
    handle = await temporal_env.client.start_workflow(
        "TransferWorkflow", request, id=workflow_id(running), task_queue=new_id("queue")
    )
    address = temporal_env.client.service_client.config.target_host
    try:
        result = audit_with_temporal(cli_env, tmp_path, address, "--json")
    finally:
        await handle.terminate()

    assert result.exit_code == 1, result
    stranded = result.json()["stranded"]
    assert stranded[unknown].endswith("neither credited nor refunded, and its workflow has ended")
    assert running not in stranded


async def test_without_temporal_the_audit_fails_unless_told_to_skip_it(
    cli_env: dict[str, str], tmp_path: Path, debit: Debit
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    before = audit_with_temporal(cli_env, tmp_path, dead, "--json", "--no-temporal").json()
    await debit()

    refused = audit_with_temporal(cli_env, tmp_path, dead)
    shards_only = audit_with_temporal(cli_env, tmp_path, dead, "--json", "--no-temporal")

    line = assert_one_clean_line(refused, 1)
    assert "is unreachable" in line
    assert "--no-temporal" in line
    report = shards_only.json()
    assert shards_only.exit_code == (0 if report["ok"] else 1)
    assert report["stranded"] == {}
    in_flight = [audit["currencies"]["EUR"]["in_flight"] for audit in (before, report)]
    assert minor_units(in_flight[1]) - minor_units(in_flight[0]) == AMOUNT
