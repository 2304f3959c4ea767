"""SQL only ever travels as bound parameters: a hostile string is refused where the id rule
applies (by the API, and by the shard's CHECK if the API is bypassed), kept verbatim where free
text is allowed, and never harms a table."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import func, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from shards.errors import InvalidAccountId
from shards.ledger import Ledger
from shards.router import ShardRouter
from shards.schema import accounts as accounts_table
from tests.support.cli_runs import run_cli
from tests.support.workers import Accounts
from transfers.client import workflow_id
from transfers.settings import Settings
from workflows.models import TransferRequest

pytestmark = pytest.mark.security

HOSTILE = "x'; DROP TABLE accounts; --"
# quotes, comments, a backslash and both placeholder styles the drivers know
MEMO = """x'; DROP TABLE accounts; -- "); DELETE FROM entries; /* ö \\ %s :id */"""
TABLES = {"accounts", "entries", "holds", "alembic_version"}


async def _tables_and_accounts(router: ShardRouter) -> list[tuple[set[str], int]]:
    """Per shard: its table names and how many accounts it holds."""
    found = []
    for shard in router.shards:
        async with shard.begin() as connection:
            names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            count = await connection.execute(select(func.count()).select_from(accounts_table))
            found.append((names, count.scalar_one()))
    return found


async def test_sql_in_an_account_id_is_refused_by_the_api_and_by_the_database(
    router: ShardRouter,
) -> None:
    before = await _tables_and_accounts(router)

    with pytest.raises(InvalidAccountId, match="DROP TABLE"):
        await Ledger(router).open_account(HOSTILE, "USD")
    shard = router.shard_for("acc-0")  # any shard: the id rule is a CHECK in each
    with pytest.raises(IntegrityError, match="account_id_format"):
        async with shard.engine.begin() as connection:  # bound parameters, no validation
            await connection.execute(
                insert(accounts_table).values(account_id=HOSTILE, currency="USD")
            )

    after = await _tables_and_accounts(router)
    assert after == before
    assert all(names >= TABLES for names, _ in after)


@pytest.mark.usefixtures("worker")
async def test_a_memo_full_of_sql_round_trips_verbatim(
    client: Client, settings: Settings, accounts: Accounts, router: ShardRouter, tmp_path: Path
) -> None:
    source = await accounts.open(1_000, shard=0)
    target = await accounts.open(0, shard=1)
    before = await _tables_and_accounts(router)
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TRANSFERS_TASK_QUEUE": settings.transfers_task_queue,
        "SHARD_DSNS": settings.shard_dsns,
    }
    submit = ("submit", "--json", "--from", source, "--to", target, "--amount", "2.50")

    result = await asyncio.to_thread(run_cli, (*submit, "--memo", MEMO), env, tmp_path)

    answer = result.json()
    assert (result.exit_code, answer["status"], answer["memo"]) == (0, "COMPLETED", MEMO)
    recorded = await _started_with(client, answer["transfer_id"])
    assert recorded.memo == MEMO
    assert (await accounts.balance(source), await accounts.balance(target)) == (750, 250)
    assert await _tables_and_accounts(router) == before


async def _started_with(client: Client, transfer_id: str) -> TransferRequest:
    """The request as Temporal recorded it in the workflow's first history event."""
    handle = client.get_workflow_handle(workflow_id(transfer_id))
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [request] = await pydantic_data_converter.decode(payloads, [TransferRequest])
        assert isinstance(request, TransferRequest)
        return request
    raise AssertionError(f"no history for {transfer_id}")
