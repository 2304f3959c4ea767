"""Any active ISO 4217 currency works end to end through the CLI (accounts, a transfer through
Temporal, its status with amount and currency); what is not a currency is refused at the door."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.support.cli_runs import CliResult, assert_one_clean_line, run_cli
from tests.support.workers import Accounts
from transfers.settings import Settings

TemporalCli = Callable[..., Awaitable[CliResult]]


@pytest.fixture
def temporal_cli(settings: Settings, tmp_path: Path) -> TemporalCli:
    """`await temporal_cli("status", "t-1")` against this test's Temporal task queue and shards,
    in a thread: the event loop stays free for the worker that runs the transfer."""
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TRANSFERS_TASK_QUEUE": settings.transfers_task_queue,
        "SHARD_DSNS": settings.shard_dsns,
    }
    return lambda *args: asyncio.to_thread(run_cli, args, environment, tmp_path)


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("currency", ["KES", "GHS"])
async def test_accounts_in_a_currency_beyond_the_old_table_open_and_transfer(
    temporal_cli: TemporalCli, accounts: Accounts, currency: str
) -> None:
    source, target = accounts.id_on(0), accounts.id_on(1)
    transfer_id = f"t-{source}"

    opened = await asyncio.gather(
        *(
            temporal_cli("accounts", "open", account, "--currency", currency)
            for account in (source, target)
        )
    )
    deposit = await temporal_cli("accounts", "deposit", source, "100.00", "--json")
    submit = ("submit", "--from", source, "--to", target, "--amount", "12.34", "--id", transfer_id)
    submitted = await temporal_cli(*submit, "--json")
    status = await temporal_cli("status", transfer_id, "--json")

    assert all(result.exit_code == 0 for result in opened), opened
    assert (deposit.json()["balance_after"], deposit.json()["currency"]) == ("100.00", currency)
    assert submitted.json()["status"] == "COMPLETED", submitted
    shown = status.json()
    assert (shown["status"], shown["amount"], shown["currency"]) == ("COMPLETED", "12.34", currency)
    assert await accounts.balance(source) == 100_00 - 12_34
    assert await accounts.balance(target) == 12_34


@pytest.mark.parametrize(
    ("currency", "reason"),
    [
        ("XAU", r"currency XAU \(Gold\) is not supported: ISO 4217 gives it no minor unit"),
        ("XDR", r"currency XDR \(SDR \(Special Drawing Right\)\) is not supported: ISO 4217 gives"),
        ("USN", r"currency USN \(US Dollar \(Next day\)\) is not supported: .* a fund code"),
    ],
)
async def test_what_is_not_a_currency_cannot_open_an_account(
    temporal_cli: TemporalCli, accounts: Accounts, currency: str, reason: str
) -> None:
    account = accounts.id_on(0)

    refused = await temporal_cli("accounts", "open", account, "--currency", currency)

    assert re.search(reason, assert_one_clean_line(refused, exit_code=2))
    shown = await temporal_cli("accounts", "show", account, "--json")
    assert shown.json()["error"]["type"] == "AccountNotFound"
