"""The shard bench's accounts: opened and funded in bulk, and the pairs each scenario moves."""

from __future__ import annotations

import random
import uuid

from sqlalchemy import insert

from shards.router import ShardRouter
from shards.schema import EntryKind, accounts, entries

CURRENCY = "XTS"  # ISO 4217's code for testing: bench money never mixes with real money
FUNDING = 10**15  # per account: no debit of the run can be refused for funds
SCENARIOS = ("uniform", "hot")
SEED_BATCH = 2_000


class Workload:
    """The bench's accounts, and which pair of them each scenario moves money between."""

    def __init__(self, router: ShardRouter, account_count: int, currency: str = CURRENCY) -> None:
        if len(router.shards) < 2:
            raise ValueError("the shard bench moves money across shards: give at least two")
        run = uuid.uuid4().hex[:8]
        self.accounts = [f"bench-{run}-{number}" for number in range(account_count)]
        self.hot = f"bench-{run}-hot"
        self.by_shard: list[list[str]] = [[] for _ in router.shards]
        for account_id in [*self.accounts, self.hot]:
            self.by_shard[router.index_for(account_id)].append(account_id)
        self.router = router
        self.currency = currency
        self.prefix = f"b{run}"
        self.random = random.Random()  # noqa: S311 (picks accounts, guards nothing)
        filled = [index for index, ids in enumerate(self.by_shard) if ids]
        self.other_shards = [
            [other for other in filled if other != own] for own in range(len(self.by_shard))
        ]

    def pair(self, scenario: str) -> tuple[str, str, int]:
        """(source, target on another shard, amount)."""
        source = self.hot if scenario == "hot" else self.random.choice(self.accounts)
        target_shard = self.random.choice(self.other_shards[self.router.index_for(source)])
        target = self.random.choice(self.by_shard[target_shard])
        return source, target, self.random.randint(1, 100)


async def seed(workload: Workload) -> None:
    """Open and fund every bench account in bulk, with the deposit entries the audit expects."""
    for shard, ids in zip(workload.router.shards, workload.by_shard, strict=True):
        for start in range(0, len(ids), SEED_BATCH):
            batch = ids[start : start + SEED_BATCH]
            async with shard.begin() as connection:
                await connection.execute(
                    insert(accounts),
                    [
                        {"account_id": id_, "currency": workload.currency, "balance": FUNDING}
                        for id_ in batch
                    ],
                )
                await connection.execute(insert(entries), [_funding(id_) for id_ in batch])


def _funding(account_id: str) -> dict[str, object]:
    return {
        "transfer_id": f"fund-{account_id}",
        "kind": EntryKind.DEPOSIT,
        "account_id": account_id,
        "amount": FUNDING,
        "balance_after": FUNDING,
    }
