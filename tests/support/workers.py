"""Workers over the real test shards, a TransfersClient per test, and helpers to set the scene."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.ledger import LedgerActivities, LedgerStep
from activities.models import StepRequest
from shards import schema
from shards.ledger import Ledger
from shards.router import ShardRouter
from shards.shard import PoolSettings
from transfers.client import TransfersClient
from transfers.settings import Settings
from worker import build_worker
from workflows.models import AppliedEntry, TransferOutcome, TransferRequest

HISTORIES = Path(__file__).parent.parent / "histories"


@pytest.fixture(scope="session")
async def worker_router(dsns: list[str]) -> AsyncIterator[ShardRouter]:
    """The workers' router, with a 1 s lock timeout: a row that a test holds locked shows up
    as a retried LockTimeout within a second."""
    router = ShardRouter.from_dsns(dsns, PoolSettings(lock_timeout_ms=1_000))
    yield router
    await router.dispose()


@pytest.fixture
def settings(temporal_env: WorkflowEnvironment, task_queue: str, dsns: list[str]) -> Settings:
    return Settings(
        temporal_address=temporal_env.client.service_client.config.target_host,
        transfers_task_queue=task_queue,
        shard_dsns=",".join(dsns),
        _env_file=None,
    )


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


class RecordingActivities(LedgerActivities):
    """The worker's activities, noting each failed step attempt as (step, error type): steps are
    local activities, which Temporal never lists as pending, so tests watch them here."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.failures: list[tuple[str, str]] = []

    async def _apply(self, kind: str, request: StepRequest, step: LedgerStep) -> AppliedEntry:
        try:
            return await super()._apply(kind, request, step)
        except ApplicationError as error:
            self.failures.append((kind, error.type or ""))
            raise


@pytest.fixture
def activities(worker_router: ShardRouter) -> RecordingActivities:
    return RecordingActivities(Ledger(worker_router))


@asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, activities: LedgerActivities
) -> AsyncIterator[Worker]:
    """A worker built like worker.py builds it; shut down before the environment closes."""
    async with build_worker(client, settings, activities) as worker:
        yield worker


@pytest.fixture
async def worker(
    client: Client, settings: Settings, activities: LedgerActivities
) -> AsyncIterator[Worker]:
    async with running_worker(client, settings, activities) as running:
        yield running


@pytest.fixture
def transfers(client: Client, settings: Settings) -> TransfersClient:
    return TransfersClient(client, settings)


class Accounts:
    """Opens funded accounts on chosen shards, reads balances, holds row locks."""

    def __init__(self, ledger: Ledger, new_id: Callable[[str], str]) -> None:
        self.ledger = ledger
        self.new_id = new_id

    def id_on(self, shard: int) -> str:
        """A fresh account id that routes to `shard`."""
        while True:
            account_id = self.new_id("acc")
            if self.ledger.router.index_for(account_id) == shard:
                return account_id

    async def open(self, balance: int = 0, *, shard: int = 0, currency: str = "USD") -> str:
        account_id = self.id_on(shard)
        await self.ledger.open_account(account_id, currency)
        if balance:
            await self.deposit(account_id, balance)
        return account_id

    async def deposit(self, account_id: str, amount: int) -> None:
        await self.ledger.deposit(self.new_id("dep"), account_id, amount)

    async def withdraw(self, account_id: str, amount: int) -> None:
        await self.ledger.withdraw(self.new_id("wd"), account_id, amount)

    async def balance(self, account_id: str) -> int:
        return (await self.ledger.get_account(account_id)).balance

    async def close(self, account_id: str) -> None:
        await self.ledger.set_status(account_id, schema.AccountStatus.CLOSED)

    async def freeze(self, account_id: str) -> None:
        await self.ledger.set_status(account_id, schema.AccountStatus.FROZEN)

    async def lock_row(self, account_id: str) -> RowLock:
        """Hold the account's row lock, as a long transaction would, until released."""
        lock = RowLock(await self.ledger.router.shard_for(account_id).engine.connect())
        await lock.acquire(account_id)
        return lock

    async def lock_waiters(self, account_id: str) -> int:
        """Sessions waiting for the account's row lock (a step waiting on that row).

        A session that must wait for a locked row takes the heavyweight lock of that row
        version (locktype 'tuple', by its ctid) while it waits: the first waiter holds it
        and waits for the holder's transaction, the ones after it wait for the tuple lock."""
        shard = self.ledger.router.shard_for(account_id)
        query = text(
            "SELECT count(DISTINCT waiting.pid) "
            "FROM pg_locks AS waiting JOIN pg_stat_activity AS session USING (pid) "
            "JOIN (SELECT ctid::text::point AS at FROM accounts WHERE account_id = :account_id)"
            " AS row_version "
            "ON (waiting.page, waiting.tuple) = (row_version.at[0]::int, row_version.at[1]::int) "
            "WHERE waiting.locktype = 'tuple' AND waiting.relation = 'accounts'::regclass "
            "AND session.datname = current_database() AND session.wait_event_type = 'Lock'"
        )
        async with shard.engine.connect() as connection:
            return int(await connection.scalar(query, {"account_id": account_id}) or 0)

    async def until_lock_waiters(
        self, account_id: str, count: int = 1, timeout_s: float = 15.0
    ) -> None:
        """Until `count` sessions wait for the account's row (a step's attempt waits on it:
        local activities are not listed by Temporal, so the shard is asked)."""
        async with asyncio.timeout(timeout_s):
            while await self.lock_waiters(account_id) < count:  # noqa: ASYNC110 (polls a shard)
                await asyncio.sleep(0.05)

    @asynccontextmanager
    async def row_locked(self, account_id: str) -> AsyncIterator[None]:
        lock = await self.lock_row(account_id)
        try:
            yield
        finally:
            await lock.release()


class RowLock:
    """A transaction holding one account row locked."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def acquire(self, account_id: str) -> None:
        table = schema.accounts
        query = select(table.c.account_id).where(table.c.account_id == account_id)
        await self.connection.begin()
        await self.connection.execute(query.with_for_update())

    async def release(self) -> None:
        await self.connection.rollback()
        await self.connection.close()


@pytest.fixture
def accounts(router: ShardRouter, new_id: Callable[[str], str]) -> Accounts:
    return Accounts(Ledger(router), new_id)


@pytest.fixture
def request_for(new_id: Callable[[str], str]) -> Callable[..., TransferRequest]:
    """`request_for(source, target, amount)`: a transfer request with a fresh transfer id."""

    def build(source: str, target: str, amount: int, currency: str = "USD") -> TransferRequest:
        return TransferRequest(
            transfer_id=new_id("t"),
            source_account_id=source,
            target_account_id=target,
            amount=amount,
            currency=currency,
        )

    return build


def error_type(outcome: TransferOutcome) -> str | None:
    return outcome.error.type if outcome.error else None


async def wait_for_step(
    handle: WorkflowHandle[Any, Any],
    step: str,
    timeout_s: float = 15.0,
) -> TransferOutcome:
    """Poll the status query until the transfer reaches `step`."""
    async with asyncio.timeout(timeout_s):
        while True:
            outcome: TransferOutcome = await handle.query("status", result_type=TransferOutcome)
            if outcome.step == step:
                return outcome
            await asyncio.sleep(0.1)


async def wait_for_failure(
    activities: RecordingActivities, step: str, timeout_s: float = 15.0
) -> str:
    """Wait until an attempt of `step` has failed (and will be retried); its error type."""
    async with asyncio.timeout(timeout_s):
        while True:
            for failed, error in activities.failures:
                if failed == step:
                    return error
            await asyncio.sleep(0.1)


async def steps_in_history(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The activities a run called, in order: regular ones and local ones (their markers)."""
    steps = []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            steps.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        marker = event.marker_recorded_event_attributes
        if event.HasField("marker_recorded_event_attributes") and "data" in marker.details:
            data = json.loads(marker.details["data"].payloads[0].data)
            if "activity_type" in data:
                steps.append(data["activity_type"])
    return steps


async def eventually(
    read: Callable[[], Awaitable[set[str]]], expected: str, timeout_s: float = 10.0
) -> None:
    """Poll `read` until `expected` is among what it returns."""
    async with asyncio.timeout(timeout_s):
        while True:
            if expected in await read():
                return
            await asyncio.sleep(0.2)


async def record_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """With RECORD_HISTORIES=1, save the run's history for tests/workflows/test_replay.py."""
    if os.environ.get("RECORD_HISTORIES") == "1":
        history = await handle.fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json() + "\n")


async def step_events(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The run's history as the saga's story, in order: 'cancel requested', 'update accepted
    <name>', '<step> scheduled' (a regular activity), then '<step> done' or '<step> failed' (a
    local activity's marker, or a regular activity's end; failed covers timed out and
    cancelled)."""
    events: list[str] = []
    scheduled: dict[int, str] = {}
    async for event in handle.fetch_history_events():
        kind = event.WhichOneof("attributes")
        if kind == "workflow_execution_cancel_requested_event_attributes":
            events.append("cancel requested")
        elif kind == "workflow_execution_update_accepted_event_attributes":
            accepted = event.workflow_execution_update_accepted_event_attributes
            events.append(f"update accepted {accepted.accepted_request.input.name}")
        elif kind == "activity_task_scheduled_event_attributes":
            step = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = step
            events.append(f"{step} scheduled")
        elif kind == "activity_task_completed_event_attributes":
            step = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            events.append(f"{step} done")
        elif kind in (
            "activity_task_failed_event_attributes",
            "activity_task_timed_out_event_attributes",
            "activity_task_canceled_event_attributes",
        ):
            ended = getattr(event, kind)
            events.append(f"{scheduled[ended.scheduled_event_id]} failed")
        elif kind == "marker_recorded_event_attributes":
            marker = event.marker_recorded_event_attributes
            if "data" in marker.details:
                data = json.loads(marker.details["data"].payloads[0].data)
                if "activity_type" in data:
                    outcome = "failed" if marker.HasField("failure") else "done"
                    events.append(f"{data['activity_type']} {outcome}")
    return events
