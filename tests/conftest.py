"""Session-wide real PostgreSQL shards; tests use fresh account ids, so nothing is cleaned up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from shards.ledger import Ledger
from shards.migrate import upgrade_all
from shards.router import ShardRouter
from shards.runner import LockStrategy
from tests.support.shard_servers import shard_dsns


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
