"""`transfers submit --pending`, `post`, `void` and `list --status HELD`, run as a user runs
them (subprocesses) against the test shards, Temporal, and this test's worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.cli_runs import AsyncCli, assert_one_clean_line, cli_against
from tests.support.pending_holds import Held
from tests.support.workers import Accounts
from transfers.client import TransfersClient
from transfers.settings import Settings

pytestmark = [pytest.mark.usefixtures("worker"), pytest.mark.pending]

Cli = AsyncCli
LIST_WAIT_S = 10.0  # visibility is eventually consistent


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> Cli:
    """`await cli("post", "t-1")` against this test's task queue and the test shards."""
    return cli_against(settings, tmp_path)


async def _listed_as_held(cli: Cli, transfer_id: str) -> dict[str, str]:
    async with asyncio.timeout(LIST_WAIT_S):
        while True:
            result = await cli("list", "--status", "HELD", "--json")
            assert result.exit_code == 0, result
            for row in result.json()["transfers"]:
                if row["transfer_id"] == transfer_id:
                    return dict(row)
            await asyncio.sleep(0.3)


async def test_submit_pending_list_then_post_part(cli: Cli, accounts: Accounts) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(0, shard=1)
    submit = ("submit", "--from", source, "--to", target, "--amount", "4.00", "--id")
    transfer_id = f"t-{source}"

    held = await cli(*submit, transfer_id, "--pending", "--timeout", "10m", "--json")
    listed = await _listed_as_held(cli, transfer_id)
    posted = await cli("post", transfer_id, "--amount", "1.50", "--json")
    void_after_post = await cli("void", transfer_id)

    assert held.exit_code == 0, held
    data = held.json()
    assert (data["status"], data["amount"], data["currency"], data["timeout_s"]) == (
        "HELD",
        "4.00",
        "USD",
        600.0,
    )
    assert data["expires_at"] is not None
    assert (listed["status"], listed["amount"]) == ("HELD", "4.00")
    assert posted.exit_code == 0, posted
    assert {key: posted.json()[key] for key in ("status", "held", "posted", "currency")} == {
        "status": "COMPLETED",
        "held": "4.00",
        "posted": "1.50",
        "currency": "USD",
    }
    assert "posted already" in assert_one_clean_line(void_after_post, exit_code=1)
    view = await accounts.ledger.get_account(source)
    assert (view.balance, view.available) == (850, 850)
    assert await accounts.balance(target) == 150


async def test_void_prints_the_outcome(cli: Cli, accounts: Accounts, held: Held) -> None:
    request = await held(250, shards=(2, 0))

    voided = await cli("void", request.transfer_id, "--json")
    again = await cli("post", request.transfer_id)

    assert voided.exit_code == 0, voided
    assert {key: voided.json()[key] for key in ("status", "held", "posted")} == {
        "status": "VOIDED",
        "held": "2.50",
        "posted": None,
    }
    assert "VOIDED" in assert_one_clean_line(again, exit_code=1)
    assert (await accounts.ledger.get_account(request.source_account_id)).available == 1_000


async def test_bad_pending_input_exits_2_and_changes_nothing(
    cli: Cli, transfers: TransfersClient, accounts: Accounts, held: Held
) -> None:
    request = await held(400, shards=(1, 2))
    source = request.source_account_id
    submit = ("submit", "--from", source, "--to", "acc-x", "--amount", "1", "--pending")
    runs = [
        (*submit, "--timeout", "0s"),
        (*submit, "--timeout", "-5m"),
        (*submit, "--timeout", "31d"),
        (*submit, "--timeout", "soon"),
        submit,  # --pending without --timeout
        ("submit", "--from", source, "--to", "acc-x", "--amount", "1", "--timeout", "1m"),
        ("post", request.transfer_id, "--amount", "0"),
        ("post", request.transfer_id, "--amount", "4.01"),
    ]

    results = await asyncio.gather(*(cli(*args) for args in runs))

    messages = [assert_one_clean_line(result, exit_code=2) for result in results]

    assert "must be above 0 and at most 30d" in messages[0]
    assert "must be above 0 and at most 30d" in messages[1]
    assert "must be above 0 and at most 30d" in messages[2]
    assert "is not a duration like 90s, 10m, 2h or 1d" in messages[3]
    assert "--pending and --timeout go together" in messages[4]
    assert "--pending and --timeout go together" in messages[5]
    assert "must be positive" in messages[6]
    assert "at most the hold's 4.00 USD" in messages[7]
    assert (await transfers.status(request.transfer_id)).status == "HELD"
    assert (await accounts.ledger.get_account(source)).available == 600
