"""`transfers retry-refund`, `resolve` and `list --stuck`, run as an operator runs them
(subprocesses) against the test shards, Temporal, and this test's worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.support.cli_runs import AsyncCli, assert_one_clean_line, cli_against
from tests.support.statements import recomputed_balance
from tests.support.stuck_refunds import (
    AMOUNT,
    BALANCE,
    NEAR_MAX_DEPOSIT,
    stuck_batch,
    stuck_refund,
)
from tests.support.workers import Accounts
from transfers.client import TransfersClient
from transfers.settings import Settings
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.usefixtures("worker")

LIST_WAIT_S = 10.0  # visibility is eventually consistent


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> AsyncCli:
    return cli_against(settings, tmp_path)


async def _stuck_ids(cli: AsyncCli, until: Callable[[set[str]], bool]) -> set[str]:
    """The ids `list --stuck --json` prints, once `until` holds for them."""
    async with asyncio.timeout(LIST_WAIT_S):
        while True:
            result = await cli("list", "--stuck", "--json")
            assert result.exit_code == 0, result
            listed = {row["transfer_id"] for row in result.json()["transfers"]}
            if until(listed):
                return listed
            await asyncio.sleep(0.3)


async def test_list_stuck_then_retry_until_the_refund_lands(
    cli: AsyncCli,
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    request = await stuck_refund(transfers, client, accounts, request_for)
    transfer_id, source = request.transfer_id, request.source_account_id

    await _stuck_ids(cli, lambda listed: transfer_id in listed)
    refused_again = await cli("retry-refund", transfer_id, "--json")
    await accounts.withdraw(source, NEAR_MAX_DEPOSIT)  # the operator's fix
    retried = await cli("retry-refund", transfer_id)
    await _stuck_ids(cli, lambda listed: transfer_id not in listed)

    assert refused_again.exit_code == 1, refused_again
    again = refused_again.json()
    assert (again["status"], again["step"], again["error"]["type"]) == (
        "COMPENSATING",
        "refund-stuck",
        "InvalidAmount",
    )
    assert retried.exit_code == 0, retried
    assert retried.stdout.startswith(f"{transfer_id} COMPENSATED (step refunded): AccountNotOpen")
    assert await accounts.balance(source) == BALANCE
    assert await recomputed_balance(accounts.ledger, source) == BALANCE
    assert await accounts.balance(request.target_account_id) == 0


async def test_resolve_wants_a_note_and_prints_it_as_text(
    cli: AsyncCli,
    transfers: TransfersClient,
    client: Client,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    request = await stuck_refund(transfers, client, accounts, request_for)
    transfer_id = request.transfer_id
    note = "paid back [bold]by hand[/bold] #42"  # Rich markup: printed as it was written

    empty = await cli("resolve", transfer_id, "--note", "  ")
    resolved = await cli("resolve", transfer_id, "--note", note)
    again = await cli("resolve", transfer_id, "--note", note, "--json")

    assert "the note must say how the refund was settled" in assert_one_clean_line(empty, 2)
    assert resolved.exit_code == 0, resolved
    assert resolved.stdout.startswith(
        f"{transfer_id} COMPENSATED (step resolved-by-operator): ResolvedByOperator: {note}"
    )
    assert again.exit_code == 1, again
    assert again.json()["error"] == {
        "type": "RefundNotStuck",
        "message": f"transfer {transfer_id} has ended (COMPENSATED, step resolved-by-operator): "
        "no refund is stuck",
    }
    outcome = await transfers.status(transfer_id)
    assert [(e.kind, e.marker) for e in outcome.entries] == [("debit", False), ("refund", True)]
    source = request.source_account_id
    assert await accounts.balance(source) == BALANCE - AMOUNT + NEAR_MAX_DEPOSIT


async def test_both_refuse_a_completed_and_an_unknown_transfer(
    cli: AsyncCli,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    new_id: Callable[[str], str],
) -> None:
    source = await accounts.open(BALANCE, shard=0)
    completed = request_for(source, await accounts.open(0, shard=1), AMOUNT)
    assert (await transfers.submit(completed)).status == TransferStatus.COMPLETED
    unknown = new_id("t")

    results = await asyncio.gather(
        cli("retry-refund", completed.transfer_id),
        cli("resolve", completed.transfer_id, "--note", "paid"),
        cli("retry-refund", unknown),
        cli("resolve", unknown, "--note", "paid"),
    )

    ended = f"transfer {completed.transfer_id} has ended (COMPLETED, step completed)"
    lines = [assert_one_clean_line(result, exit_code=1) for result in results]
    assert lines == [
        f"error: {ended}: no refund is stuck",
        f"error: {ended}: no refund is stuck",
        f"error: no transfer {unknown}",
        f"error: no transfer {unknown}",
    ]
    assert await accounts.balance(source) == BALANCE - AMOUNT


async def test_retry_refund_and_resolve_reach_a_transfer_inside_its_batch(
    cli: AsyncCli,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    batch_id, [request], _ = await stuck_batch(transfers, accounts, request_for, stuck=1)
    transfer_id = request.transfer_id

    refused_again = await cli("retry-refund", transfer_id, "--json")
    resolved = await cli("resolve", transfer_id, "--note", "paid back by wire 7")
    again = await cli("resolve", transfer_id, "--note", "paid back by wire 7", "--json")

    assert refused_again.exit_code == 1, refused_again
    said = refused_again.json()
    assert (said["batch_id"], said["step"], said["error"]["type"]) == (
        batch_id,
        "refund-stuck",
        "InvalidAmount",
    )
    assert said["ui_link"].endswith(f"/batch-{batch_id}")
    assert resolved.exit_code == 0, resolved
    assert resolved.stdout.startswith(
        f"{transfer_id} COMPENSATED (step resolved-by-operator): ResolvedByOperator: "
        "paid back by wire 7"
    )
    assert f"in batch {batch_id}" in resolved.stdout
    assert again.exit_code == 1, again
    assert again.json()["error"]["type"] == "RefundNotStuck"
    assert await accounts.balance(request.source_account_id) == BALANCE - AMOUNT + NEAR_MAX_DEPOSIT
    assert await accounts.balance(request.target_account_id) == 0


async def test_resolve_exits_1_when_the_ledger_refunded_first(
    cli: AsyncCli,
    transfers: TransfersClient,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
) -> None:
    """The refund committed on the shard in a workflow task that was lost (written here as the
    lost step would): `resolve` finds it, and says loudly not to pay by hand."""
    _, [request], _ = await stuck_batch(transfers, accounts, request_for, stuck=1)
    source = request.source_account_id
    await accounts.withdraw(source, NEAR_MAX_DEPOSIT)
    await accounts.ledger.refund(
        request.transfer_id, source, request.amount, request.currency, request.fingerprint()
    )

    resolved = await cli("resolve", request.transfer_id, "--note", "paid by wire 8", "--json")

    assert resolved.exit_code == 1, resolved
    assert (resolved.json()["status"], resolved.json()["step"]) == ("COMPENSATED", "refunded")
    assert resolved.error_lines == [
        "warning: the ledger refunded the source before the resolve: do not pay it back by "
        "hand (recover a payment already made)"
    ]
    assert await accounts.balance(source) == BALANCE
