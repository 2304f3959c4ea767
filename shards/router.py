"""Account -> shard routing that every process on every machine agrees on.

The shard of an account is `int.from_bytes(sha256(account_id.encode("utf-8"))[:8], "big") % N`,
where N is the number of DSNs in `SHARD_DSNS` and shard i is the i-th DSN. The mapping depends only
on the id and on N, never on Python's randomised `hash()`. Changing N or the order of the DSNs
moves accounts: the list is fixed for the life of a deployment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from shards.shard import PoolSettings, Shard
from shards.validation import check_account_id


def shard_index(account_id: str, shard_count: int) -> int:
    """The shard of an account: stable across processes and machines (see the module docstring)."""
    digest = hashlib.sha256(account_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shard_count


def parse_dsns(value: str | Sequence[str]) -> list[str]:
    """`SHARD_DSNS` as a list: comma separated, blanks dropped, at least one."""
    items = value.split(",") if isinstance(value, str) else list(value)
    dsns = [item.strip() for item in items if item.strip()]
    if not dsns:
        raise ValueError("SHARD_DSNS is empty: give at least one PostgreSQL DSN")
    return dsns


class ShardRouter:
    """The ordered shards and the mapping of accounts onto them."""

    def __init__(self, shards: Sequence[Shard]) -> None:
        if not shards:
            raise ValueError("a router needs at least one shard")
        self.shards = list(shards)

    @classmethod
    def from_dsns(cls, dsns: str | Sequence[str], pool: PoolSettings | None = None) -> ShardRouter:
        """One shard per DSN, in the order given: that order is part of the routing."""
        return cls([Shard(index, dsn, pool) for index, dsn in enumerate(parse_dsns(dsns))])

    def index_for(self, account_id: str) -> int:
        """The index of the account's shard; InvalidAccountId for a malformed id."""
        return shard_index(check_account_id(account_id), len(self.shards))

    def shard_for(self, account_id: str) -> Shard:
        """The account's shard."""
        return self.shards[self.index_for(account_id)]

    def same_shard(self, first_account_id: str, second_account_id: str) -> bool:
        """Whether both accounts live on one shard (then a transfer is one transaction)."""
        return self.index_for(first_account_id) == self.index_for(second_account_id)

    async def dispose(self) -> None:
        """Close every shard's connection pool."""
        for shard in self.shards:
            await shard.dispose()
