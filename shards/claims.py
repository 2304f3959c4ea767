"""One owner per transfer id: the first request's digest, kept on the shard the id routes to."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Text, bindparam, select
from sqlalchemy.dialects.postgresql import insert

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


@dataclass(frozen=True)
class _Claim:
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
    if found[0].fingerprint != fingerprint:
        raise IdempotencyConflict(
            f"transfer {transfer_id} was submitted before with other fields (source, target, "
            "amount, currency or kind); this request is refused"
        )
