"""The tests' `Accounts.lock_waiters(account_id)` counts the sessions waiting for that account's
row, not every lock waiter of its shard: tests that wait until a step waits on a row rely on it."""

from __future__ import annotations

import asyncio

from tests.support.workers import Accounts

WAITERS = 2  # the first waits for the holder's transaction, the second for the first


async def _lock_then_release(accounts: Accounts, account_id: str) -> None:
    lock = await accounts.lock_row(account_id)
    await lock.release()


async def test_lock_waiters_counts_the_waiters_of_that_account_only(accounts: Accounts) -> None:
    waited_on, other = await accounts.open(shard=0), await accounts.open(shard=0)
    async with accounts.row_locked(waited_on), accounts.row_locked(other):
        assert await accounts.lock_waiters(waited_on) == 0
        waiters = [
            asyncio.create_task(_lock_then_release(accounts, waited_on)) for _ in range(WAITERS)
        ]
        await accounts.until_lock_waiters(waited_on, WAITERS)
        # the other row is locked too, on the same shard, but nobody waits for it
        assert await accounts.lock_waiters(other) == 0
        assert await accounts.lock_waiters(waited_on) == WAITERS
    await asyncio.gather(*waiters)
    assert await accounts.lock_waiters(waited_on) == 0
