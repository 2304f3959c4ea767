"""One owner per transfer id: the first request's digest, kept on the shard the id routes to;
and the ending of a transfer that no entry can record (see `end_claims`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Text, and_, any_, bindparam, column, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert

from shards.compiled import Compiled
from shards.engine.decisions import COMPENSATIONS
from shards.errors import BusinessError, IdempotencyConflict, recorded_error
from shards.records import Ending
from shards.schema import entries, transfer_claims
from shards.shard import Shard

_TRANSFER_ID = bindparam("transfer_id", type_=Text)
_OWNER = (
    transfer_claims.c.transfer_id,
    transfer_claims.c.fingerprint,
    transfer_claims.c.ended_code,
    transfer_claims.c.ended_message,
)

_inserted = (
    insert(transfer_claims)
    .values(transfer_id=_TRANSFER_ID, fingerprint=bindparam("fingerprint", type_=Text))
    .on_conflict_do_nothing(index_elements=[transfer_claims.c.transfer_id])
    .returning(*_OWNER)
    .cte("inserted")
)
# The new claim, or the one already there: one round trip. Under READ COMMITTED a claim that a
# concurrent transaction commits while this one waits on the key is seen by neither half.
_CLAIM = Compiled.of(
    select(*(_inserted.c[c.name] for c in _OWNER)).union_all(
        select(*_OWNER).where(transfer_claims.c.transfer_id == _TRANSFER_ID)
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
    .returning(*_OWNER)
    .cte("inserted")
)
# _CLAIM for many ids at once, inserted in id order: two batches wait on each other's keys in
# one order, never in a cycle.
_CLAIM_MANY = Compiled.of(
    select(*(_inserted_many.c[c.name] for c in _OWNER)).union_all(
        select(*_OWNER).where(transfer_claims.c.transfer_id == any_(_IDS))
    )
)

_ended = (
    func.unnest(
        _IDS,
        bindparam("fingerprints", type_=ARRAY(Text)),
        bindparam("codes", type_=ARRAY(Text)),
        bindparam("messages", type_=ARRAY(Text)),
    )
    .table_valued(
        column("transfer_id", Text),
        column("fingerprint", Text),
        column("code", Text),
        column("message", Text),
    )
    .render_derived(name="ended")
)
# The first ending recorded stays: a claim is ended once, and only by its own request.
_END_CLAIMS = Compiled.of(
    update(transfer_claims)
    .values(ended_code=_ended.c.code, ended_message=_ended.c.message)
    .where(
        and_(
            transfer_claims.c.transfer_id == _ended.c.transfer_id,
            transfer_claims.c.fingerprint == _ended.c.fingerprint,
            transfer_claims.c.ended_code.is_(None),
        )
    )
)

# Which of these transfers have a compensation entry (refund or release, real or marker) here,
# but a marker written while its account did not exist (no balance after it, migration 0006): that
# one keeps no error, and the claim still records the ending's, whenever the account opens.
_COMPENSATED = Compiled.of(
    select(entries.c.transfer_id)
    .distinct()
    .where(
        entries.c.transfer_id == any_(_IDS),
        entries.c.balance_after.is_not(None),
        or_(*(entries.c.kind == str(kind) for kind in sorted(COMPENSATIONS))),
    )
)


@dataclass(frozen=True)
class _Owner:
    transfer_id: str
    fingerprint: str
    ended_code: str | None
    ended_message: str | None


@dataclass(frozen=True)
class _Compensated:
    transfer_id: str


async def claim(shard: Shard, transfer_id: str, fingerprint: str) -> None:
    """Make the request with `fingerprint` the owner of `transfer_id`, or refuse it: with
    IdempotencyConflict (another request owns it), or with the error its ending recorded."""
    for _ in range(2):  # the second read sees a concurrent claim committed (see _CLAIM)
        async with shard.driver_transaction() as connection:
            found = await _CLAIM.objects(
                connection, _Owner, transfer_id=transfer_id, fingerprint=fingerprint
            )
        if found:
            break
    else:
        raise RuntimeError(f"{shard.name}: transfer {transfer_id} neither claimed nor found")
    refusal = _refusal(transfer_id, fingerprint, found[0])
    if refusal is not None:
        raise refusal


async def claim_many(shard: Shard, claims: Sequence[tuple[str, str]]) -> list[BusinessError | None]:
    """`claim` for many (transfer_id, fingerprint) of one shard, in one statement: for each, None
    when that request owns the id (now or before), else the error `claim` would raise. An id
    twice in `claims` is owned by its first request."""
    wanted = dict(reversed(claims))  # the first request of each id
    owners: dict[str, _Owner] = {}
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
        owners.update((owner.transfer_id, owner) for owner in found)
    if set(wanted) - set(owners):
        raise RuntimeError(f"{shard.name}: transfers neither claimed nor found")
    return [
        _refusal(transfer_id, fingerprint, owners[transfer_id])
        for transfer_id, fingerprint in claims
    ]


async def compensated(shard: Shard, transfer_ids: Sequence[str]) -> set[str]:
    """Those of `transfer_ids` with a compensation entry (refund or release) on this shard."""
    async with shard.driver_transaction() as connection:
        found = await _COMPENSATED.objects(
            connection, _Compensated, transfer_ids=sorted(set(transfer_ids))
        )
    return {row.transfer_id for row in found}


async def end_claims(shard: Shard, endings: Sequence[Ending]) -> None:
    """Record each ending on its claim (of this shard), unless one is recorded already or the
    claim is another request's: from then on `claim` refuses the request with that error.

    For a transfer that ends with nothing moved while its source has no account: the refund
    marker that refuses a later debit is written without the row (migration 0006), but keeps no
    error; the claim keeps it, for a later run of the same request to end with it.
    """
    if not endings:
        return
    ordered = sorted(endings, key=lambda ending: ending.transfer_id)  # rows locked in id order
    async with shard.driver_transaction() as connection:
        await _END_CLAIMS.run(
            connection,
            transfer_ids=[ending.transfer_id for ending in ordered],
            fingerprints=[ending.fingerprint for ending in ordered],
            codes=[ending.code for ending in ordered],
            messages=[ending.message for ending in ordered],
        )


def _refusal(transfer_id: str, fingerprint: str, owner: _Owner) -> BusinessError | None:
    if owner.fingerprint != fingerprint:
        return IdempotencyConflict(
            f"transfer {transfer_id} was submitted before with other fields (source, target, "
            "amount, currency or kind); this request is refused"
        )
    if owner.ended_code is not None:  # this request ran before and ended so
        return recorded_error(owner.ended_code, owner.ended_message or "")
    return None
