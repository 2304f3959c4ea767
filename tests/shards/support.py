"""Helpers shared by the shard-layer tests: funded accounts, same-shard ids, raw row counts."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from shards.ledger import Ledger
from shards.router import ShardRouter
from shards.schema import entries

NewId = Callable[[str], str]


async def open_funded(ledger: Ledger, account_id: str, amount: int, currency: str = "USD") -> str:
    """Open `account_id` and deposit `amount` into it (nothing when 0)."""
    await ledger.open_account(account_id, currency)
    if amount:
        await ledger.deposit(f"dep-{account_id}"[:64], account_id, amount, currency)
    return account_id


def ids_on_shard(router: ShardRouter, new_id: NewId, shard: int, count: int) -> list[str]:
    """`count` fresh account ids that all route to shard `shard`."""
    found: list[str] = []
    while len(found) < count:
        candidate = new_id("acc")
        if router.index_for(candidate) == shard:
            found.append(candidate)
    return found


def id_on_other_shard(router: ShardRouter, new_id: NewId, account_id: str) -> str:
    """A fresh account id that routes to another shard than `account_id`."""
    while True:
        candidate = new_id("acc")
        if not router.same_shard(candidate, account_id):
            return candidate


async def entry_count(router: ShardRouter, *, transfer_id: str | None = None) -> int:
    """How many entries every shard holds, for one transfer or in all."""
    query = select(func.count()).select_from(entries)
    if transfer_id is not None:
        query = query.where(entries.c.transfer_id == transfer_id)
    total = 0
    for shard in router.shards:
        async with shard.begin() as connection:
            total += (await connection.execute(query)).scalar_one()
    return total


async def assert_refunded_or_never_debited(
    ledger: Ledger, source: str, transfer: str, funds: int
) -> None:
    """A refund raced a debit of the same transfer on `source`: debited and refunded, or
    refunded first (a marker) and the debit refused; either way the source keeps its funds."""
    moved = {
        kind: marker
        for transfer_id, kind, _, marker in await entry_kinds(ledger.router, source)
        if transfer_id == transfer
    }
    assert moved in ({"debit": False, "refund": False}, {"refund": True}), moved
    assert (await ledger.get_account(source)).balance == funds


async def entry_kinds(router: ShardRouter, account_id: str) -> list[tuple[str, str, int, bool]]:
    """(transfer_id, kind, amount, marker) of every entry on `account_id`, oldest first."""
    query = (
        select(entries.c.transfer_id, entries.c.kind, entries.c.amount, entries.c.marker)
        .where(entries.c.account_id == account_id)
        .order_by(entries.c.entry_id)
    )
    async with router.shard_for(account_id).begin() as connection:
        return [tuple(row) for row in (await connection.execute(query)).all()]
