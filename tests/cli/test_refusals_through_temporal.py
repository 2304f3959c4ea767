"""Requests that are well formed but refused by the shards (unknown, frozen or closed accounts,
too little money, another currency) or by Temporal (a transfer id reused with other fields):
`transfers submit --json` exits 1 with the error's type and message, and no money moves."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from shards.ledger import Ledger
from shards.router import ShardRouter
from shards.schema import entries
from tests.support.cli_runs import CliResult
from tests.support.refusals import CliCase, cli_env, new_id, run_cases, serving_worker
from tests.support.workers import Accounts
from transfers.client import TransfersClient
from workflows.models import TransferRequest

pytestmark = pytest.mark.bad_input

BALANCE = 10_000  # minor units in every funded account


@dataclass(frozen=True)
class Refusal:
    """What a refused submit answers, the money moves its transfer id is left with (entry
    kinds, markers aside) and the source's balance afterwards (None: it does not exist)."""

    status: str | None  # the transfer's final status; None: refused before a workflow ran
    error_type: str
    message: str
    moves: tuple[str, ...] = ()
    source_balance: int | None = BALANCE


REFUSALS = {
    "unknown source": Refusal(
        "FAILED", "AccountNotFound", r"account acc-\w+ does not exist", source_balance=None
    ),
    "unknown target": Refusal("FAILED", "AccountNotFound", r"account acc-\w+ does not exist"),
    "frozen source": Refusal("FAILED", "AccountNotOpen", r"account acc-\w+ is frozen"),
    "frozen target": Refusal("FAILED", "AccountNotOpen", r"account acc-\w+ is frozen"),
    # Across shards the debit lands first; the refused credit is compensated by a refund.
    "closed target": Refusal(
        "COMPENSATED", "AccountNotOpen", r"account acc-\w+ is closed", ("debit", "refund")
    ),
    # the amount asked for, never the balance: the submitter may not own the source
    "insufficient funds": Refusal(
        "FAILED",
        "InsufficientFunds",
        rf"^account acc-\w+ has too little available for {BALANCE + 1}$",
    ),
    "other currency": Refusal("FAILED", "CurrencyMismatch", r"holds USD, the transfer is in EUR"),
    # Only the first submission, with the same id and 1.00, moved money.
    "transfer id reused": Refusal(
        None,
        "IdempotencyConflict",
        r"submitted before with other fields: amount 100 \(now 200\)",
        ("credit", "debit"),
        BALANCE - 100,
    ),
}


async def _scene(accounts: Accounts, name: str) -> tuple[str, str, str, str]:
    """(source, target, amount, currency) of the case: same-shard unless it says otherwise."""
    source = await accounts.open(BALANCE, shard=0)
    same_shard = await accounts.open(0, shard=0)
    if name == "unknown source":
        return accounts.id_on(0), same_shard, "1.00", "USD"
    if name == "unknown target":
        return source, accounts.id_on(0), "1.00", "USD"
    if name == "frozen source":
        await accounts.freeze(source)
    if name == "frozen target":
        await accounts.freeze(same_shard)
    if name == "closed target":
        closed = await accounts.open(0, shard=1)
        await accounts.close(closed)
        return source, closed, "1.00", "USD"
    amount = {"insufficient funds": f"{(BALANCE + 1) / 100:.2f}"}.get(name, "1.00")
    return source, same_shard, amount, "EUR" if name == "other currency" else "USD"


@dataclass(frozen=True)
class Submitted:
    result: CliResult
    transfer_id: str
    source: str
    target: str


@pytest.fixture(scope="module")
async def refused(
    temporal_env: WorkflowEnvironment,
    dsns: list[str],
    router: ShardRouter,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Submitted]:
    """Every case submitted through the CLI at once, against one worker of this module."""
    accounts = Accounts(Ledger(router), new_id)
    async with serving_worker(temporal_env, dsns, router) as settings:
        cases, submissions = await _set_the_scene(
            accounts, TransfersClient(temporal_env.client, settings)
        )
        folder = tmp_path_factory.mktemp("refused")
        results = await asyncio.to_thread(run_cases, cases, cli_env(settings), folder)
    return {name: Submitted(results[name], *submissions[name]) for name in REFUSALS}


async def _set_the_scene(
    accounts: Accounts, transfers: TransfersClient
) -> tuple[dict[str, CliCase], dict[str, tuple[str, str, str]]]:
    """The command line of every case, and its (transfer id, source, target)."""
    cases: dict[str, CliCase] = {}
    submissions: dict[str, tuple[str, str, str]] = {}
    for name in REFUSALS:
        source, target, amount, currency = await _scene(accounts, name)
        transfer_id = accounts.new_id("t")
        if name == "transfer id reused":
            first = TransferRequest(
                transfer_id=transfer_id,
                source_account_id=source,
                target_account_id=target,
                amount=100,
                currency="USD",
            )
            await transfers.submit(first)
            amount = "2.00"
        args = ("--from", source, "--to", target, "--amount", amount, "--currency", currency)
        cases[name] = CliCase(("submit", "--json", "--id", transfer_id, *args), "")
        submissions[name] = (transfer_id, source, target)
    return cases, submissions


async def _moves(router: ShardRouter, transfer_id: str) -> tuple[str, ...]:
    """The kinds of the money moves (not markers) of `transfer_id` on every shard, sorted."""
    query = select(entries.c.kind).where(entries.c.transfer_id == transfer_id, ~entries.c.marker)
    found: list[str] = []
    for shard in router.shards:
        async with shard.begin() as connection:
            found += (await connection.execute(query)).scalars()
    return tuple(sorted(found))


@pytest.mark.parametrize("name", REFUSALS)
async def test_refused_exits_1_names_the_error_and_moves_no_money(
    refused: dict[str, Submitted], router: ShardRouter, name: str
) -> None:
    expected, submitted = REFUSALS[name], refused[name]
    result = submitted.result
    assert result.exit_code == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    answer = result.json()
    assert answer.get("status") == expected.status, answer
    assert answer["error"]["type"] == expected.error_type, answer
    assert re.search(expected.message, answer["error"]["message"]), answer

    assert await _moves(router, submitted.transfer_id) == expected.moves
    if expected.source_balance is not None:
        source = await Ledger(router).get_account(submitted.source)
        assert source.balance == expected.source_balance
