"""The bench workload written by hand in psycopg 3: the yardstick the shard layer is held to.

One connection per worker and shard (no pool), one transaction per step: lock the row, check,
update balance and version, insert the entry, commit. No idempotency read, no holds, no retries.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from shards.router import shard_index
from shards.schema import EntryKind

LOCK = "SELECT balance FROM accounts WHERE account_id = %s FOR UPDATE"
POST = (
    "UPDATE accounts SET balance = %s, version = version + 1, updated_at = now() "
    "WHERE account_id = %s"
)
RECORD = (
    "INSERT INTO entries (transfer_id, kind, account_id, amount, balance_after) "
    "VALUES (%s, %s, %s, %s, %s)"
)


class PlainLoop:
    """Debits and credits as plain SQL on dedicated connections: `connections[worker][shard]`."""

    def __init__(self, connections: list[list[psycopg.AsyncConnection]]) -> None:
        self.connections = connections

    @classmethod
    async def connect(cls, dsns: Sequence[str], workers: int) -> PlainLoop:
        connections = [
            [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for dsn in dsns]
            for _ in range(workers)
        ]
        return cls(connections)

    async def step(
        self, worker: int, transfer_id: str, kind: str, account_id: str, amount: int
    ) -> bool:
        """Apply a debit or a credit of `amount`; False when the balance is too low."""
        shards = self.connections[worker]
        connection = shards[shard_index(account_id, len(shards))]
        change = -amount if kind == EntryKind.DEBIT else amount
        async with connection.transaction():
            cursor = await connection.execute(LOCK, (account_id,))
            row = await cursor.fetchone()
            if row is None or row[0] + change < 0:
                return False
            balance = row[0] + change
            await connection.execute(POST, (balance, account_id))
            await connection.execute(RECORD, (transfer_id, kind, account_id, amount, balance))
        return True

    async def close(self) -> None:
        for shards in self.connections:
            for connection in shards:
                await connection.close()
