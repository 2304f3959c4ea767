"""Infrastructure failures surface as retryable errors that never leak a password."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.util import greenlet_spawn

from shards.errors import InfrastructureError, ShardUnavailable
from shards.ledger import Ledger
from shards.router import ShardRouter
from shards.shard import PoolSettings, Shard
from tests.shards.support import NewId, open_funded
from transfers.devtools.embedded_pg import free_port

PASSWORD = "s3cret"


def _messages(error: BaseException) -> str:
    """The error and every error chained under it, as one text."""
    texts: list[str] = []
    current: BaseException | None = error
    while current is not None and len(texts) < 10:
        texts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


async def test_closed_port_is_a_retryable_unavailable_shard_without_the_password() -> None:
    dsn = f"postgresql://ledger:{PASSWORD}@127.0.0.1:{free_port()}/ledger"
    router = ShardRouter([Shard(0, dsn, PoolSettings(connect_timeout_s=2))])
    try:
        with pytest.raises(ShardUnavailable) as raised:
            await Ledger(router).debit("t-1", "acc-1", 10, "USD")
    finally:
        await router.dispose()

    assert isinstance(raised.value, InfrastructureError)
    assert PASSWORD not in _messages(raised.value)
    assert PASSWORD not in router.shards[0].redacted_dsn
    assert "ledger" in router.shards[0].redacted_dsn  # still says which server it was


async def test_exhausted_pool_is_a_retryable_unavailable_shard(dsns: list[str]) -> None:
    # One connection and no overflow; pool_timeout is twice connect_timeout_s.
    shard = Shard(0, dsns[0], PoolSettings(pool_size=1, max_overflow=0, connect_timeout_s=1))
    try:
        async with shard.begin():
            with pytest.raises(ShardUnavailable):
                async with shard.begin():
                    pass
    finally:
        await shard.dispose()


async def test_exhausted_pool_fails_a_step_as_an_unavailable_shard(dsns: list[str]) -> None:
    shard = Shard(0, dsns[0], PoolSettings(pool_size=1, max_overflow=0, connect_timeout_s=1))
    router = ShardRouter([shard])
    try:
        async with shard.begin():
            with pytest.raises(ShardUnavailable):
                await Ledger(router).debit("t-1", "acc-1", 10, "USD")
    finally:
        await router.dispose()


async def test_a_killed_connection_fails_one_step_then_the_pool_recovers(
    dsns: list[str], new_id: NewId
) -> None:
    shard = Shard(0, dsns[0], PoolSettings(pool_size=1, max_overflow=0))
    router = ShardRouter([shard])  # one shard, one connection: every step reuses it
    ledger = Ledger(router)
    try:
        account = await open_funded(ledger, new_id("acc"), 100)
        async with shard.driver_transaction() as driver:
            backend = driver.info.backend_pid
        async with await psycopg.AsyncConnection.connect(dsns[0], autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (backend,))

        with pytest.raises(ShardUnavailable):
            await ledger.debit(new_id("t"), account, 10, "USD")
        after = await ledger.debit(new_id("t"), account, 10, "USD")
    finally:
        await router.dispose()

    assert after.balance_after == 90  # the failed step wrote nothing; the next one got through


async def test_a_connection_returned_mid_transaction_is_rolled_back(
    router: ShardRouter, new_id: NewId
) -> None:
    # The pool skips its blanket ROLLBACK on return for speed; a connection that comes back
    # with a transaction still open must still never carry those writes into the next user.
    ledger = Ledger(router)
    account = await open_funded(ledger, new_id("acc"), 100)
    shard = router.shard_for(account)
    pooled = await shard.engine.raw_connection()
    driver = pooled.driver_connection
    assert driver is not None
    await driver.execute("UPDATE accounts SET balance = 0 WHERE account_id = %s", (account,))
    await greenlet_spawn(pooled.close)  # handed back without COMMIT or ROLLBACK

    assert (await ledger.get_account(account)).balance == 100
    assert (await ledger.debit(new_id("t"), account, 30, "USD")).balance_after == 70
