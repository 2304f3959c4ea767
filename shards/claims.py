"""One owner per transfer id: the first request's digest, kept on the shard the id routes to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Text, any_, bindparam, column, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert

from shards.compiled import Compiled
from shards.errors import IdempotencyConflict
from shards.schema import transfer_claims
from shards.shard import Shard

_TRANSFER_ID = bindparam("transfer_id", type_=Text)

_inserted = (
    insert(transfer_claims)
    .values(transfer_id=_TRANSFER_ID, fingerprint=bindparam("fingerprint", type_=Text))
    .on_conflict_do_nothing(index_elements=[transfer_claims.c.transfer_id])
    .returning(transfer_claims.c.fingerprint)
    .cte("inserted")
)
# The new claim, or the one already there: one round trip. Under READ COMMITTED a claim that a
# concurrent transaction commits while this one waits on the key is seen by neither half.
_CLAIM = Compiled.of(
    select(_inserted.c.fingerprint).union_all(
        select(transfer_claims.c.fingerprint).where(transfer_claims.c.transfer_id == _TRANSFER_ID)
    )
)


_IDS = bindparam("transfer_ids", type_=ARRAY(Text))
_new_claims = (
    func.unnest(_IDS, bindparam("fingerprints", type_=ARRAY(Text)))
    .table_valued(column("transfer_id", Text), column("fingerprint", Text))
    .render_derived(name="new_claim")
)
_inserted_many = (
    insert(transfer_claims)
    .from_select(
        ["transfer_id", "fingerprint"],
        select(_new_claims.c.transfer_id, _new_claims.c.fingerprint),
    )
    .on_conflict_do_nothing(index_elements=[transfer_claims.c.transfer_id])
    .returning(transfer_claims.c.transfer_id, transfer_claims.c.fingerprint)
    .cte("inserted")
)
# _CLAIM for many ids at once, inserted in id order: two batches wait on each other's keys in
# one order, never in a cycle.
_CLAIM_MANY = Compiled.of(
    select(_inserted_many.c.transfer_id, _inserted_many.c.fingerprint).union_all(
        select(transfer_claims.c.transfer_id, transfer_claims.c.fingerprint).where(
            transfer_claims.c.transfer_id == any_(_IDS)
        )
    )
)


@dataclass(frozen=True)
class _Claim:
    fingerprint: str


@dataclass(frozen=True)
class _Owner:
    transfer_id: str
    fingerprint: str


async def claim(shard: Shard, transfer_id: str, fingerprint: str) -> None:
    """Make the request with `fingerprint` the owner of `transfer_id`, or refuse it."""
    for _ in range(2):  # the second read sees a concurrent claim committed (see _CLAIM)
        async with shard.driver_transaction() as connection:
            found = await _CLAIM.objects(
                connection, _Claim, transfer_id=transfer_id, fingerprint=fingerprint
            )
        if found:
            break
    else:
        raise RuntimeError(f"{shard.name}: transfer {transfer_id} neither claimed nor found")
    refusal = _refusal(transfer_id, fingerprint, found[0].fingerprint)
    if refusal is not None:
        raise refusal


async def claim_many(
    shard: Shard, claims: Sequence[tuple[str, str]]
) -> list[IdempotencyConflict | None]:
    """`claim` for many (transfer_id, fingerprint) of one shard, in one statement: for each, None
    when that request owns the id (now or before), else its IdempotencyConflict. An id twice in
    `claims` is owned by its first request."""
    wanted = dict(reversed(claims))  # the first request of each id
    owners: dict[str, str] = {}
    for _ in range(2):  # the second read sees claims committed concurrently (see _CLAIM)
        missing = sorted(set(wanted) - set(owners))
        if not missing:
            break
        async with shard.driver_transaction() as connection:
            found = await _CLAIM_MANY.objects(
                connection,
                _Owner,
                transfer_ids=missing,
                fingerprints=[wanted[transfer_id] for transfer_id in missing],
            )
        owners.update((owner.transfer_id, owner.fingerprint) for owner in found)
    if set(wanted) - set(owners):
        raise RuntimeError(f"{shard.name}: transfers neither claimed nor found")
    return [
        _refusal(transfer_id, fingerprint, owners[transfer_id])
        for transfer_id, fingerprint in claims
    ]


def _refusal(transfer_id: str, fingerprint: str, owner: str) -> IdempotencyConflict | None:
    if owner == fingerprint:
        return None
    return IdempotencyConflict(
        f"transfer {transfer_id} was submitted before with other fields (source, target, "
        "amount, currency or kind); this request is refused"
    )
