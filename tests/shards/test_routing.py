"""Every process on every machine sends an account to the same shard, and shards fill evenly."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from shards.router import ShardRouter, parse_dsns, shard_index

# Computed once from sha256(id)[:8] big-endian mod N: a change to the formula moves accounts.
KNOWN_ROUTES = [
    ("acc-1", 3, 0),
    ("acc-2", 3, 1),
    ("alice", 3, 2),
    ("bob", 3, 2),
    ("x", 3, 0),
    ("merchant:42", 3, 2),
    ("acc-1", 5, 1),
    ("acc-2", 5, 3),
    ("bob", 5, 0),
    ("bob", 2, 0),
    ("alice", 2, 1),
]


@pytest.mark.parametrize(("account_id", "shard_count", "expected"), KNOWN_ROUTES)
def test_known_accounts_route_where_they_always_did(
    account_id: str, shard_count: int, expected: int
) -> None:
    assert shard_index(account_id, shard_count) == expected


def test_routing_does_not_depend_on_the_hash_seed() -> None:
    script = "from shards.router import shard_index; print(shard_index('alice', 7))"
    answers = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("0", "1", "12345")
    }
    assert answers == {str(shard_index("alice", 7))}


def test_ten_thousand_ids_spread_evenly_over_three_shards() -> None:
    counts = Counter(shard_index(f"acc-{number}", 3) for number in range(10_000))

    assert set(counts) == {0, 1, 2}
    for count in counts.values():
        assert abs(count - 10_000 / 3) <= 10_000 / 3 * 0.10


def test_router_uses_the_dsn_order() -> None:
    dsns = parse_dsns(" postgresql://a@h1/db , ,postgresql://b@h2/db,postgresql://c@h3/db ")
    router = ShardRouter.from_dsns(dsns)

    assert [shard.redacted_dsn for shard in router.shards] == [
        "postgresql://h1/db",
        "postgresql://h2/db",
        "postgresql://h3/db",
    ]
    assert router.shard_for("alice") is router.shards[2]
    assert router.same_shard("acc-1", "x")
    with pytest.raises(ValueError, match="empty"):
        parse_dsns(" , ")
