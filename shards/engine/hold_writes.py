"""The step's writes to the holds table: place a hold, move it out of `active`, sweep lapsed ones.

The expiry is judged by shards.engine.hold_expiry's rule: the shard's clock, never the worker's.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Text, any_, bindparam, func, insert, update
from sqlalchemy.dialects.postgresql import ARRAY

from shards.compiled import Compiled, Driver
from shards.engine.changes import Change
from shards.engine.hold_expiry import EXPIRES_AT, HOLD_COLUMNS, LAPSED
from shards.errors import HoldExpired
from shards.records import HoldView
from shards.schema import HoldStatus, holds

_PLACE = Compiled.of(
    insert(holds)
    .values(
        transfer_id=bindparam("transfer_id", type_=Text),
        account_id=bindparam("account_id", type_=Text),
        amount=bindparam("amount", type_=BigInteger),
        expires_at=EXPIRES_AT,
    )
    .returning(*HOLD_COLUMNS)
)
_MOVE = (
    update(holds)
    .where(
        holds.c.transfer_id == bindparam("transfer_id", type_=Text),
        holds.c.status == HoldStatus.ACTIVE,
    )
    .values(
        status=bindparam("status", type_=Text),
        version=holds.c.version + 1,
        updated_at=func.now(),
    )
    .returning(*HOLD_COLUMNS)
)
_MOVES = {
    False: Compiled.of(_MOVE),
    True: Compiled.of(_MOVE.where(~LAPSED)),
}

_RELEASE_LAPSED = Compiled.of(
    update(holds)
    .where(
        holds.c.transfer_id == any_(bindparam("transfer_ids", type_=ARRAY(Text))),
        holds.c.status == HoldStatus.ACTIVE,
    )
    .values(status=HoldStatus.RELEASED, version=holds.c.version + 1, updated_at=func.now())
)


async def release_lapsed(connection: Driver, transfer_ids: list[str]) -> int:
    """Mark the lapsed holds of `transfer_ids` released; returns how many were still active."""
    return await _RELEASE_LAPSED.run(connection, transfer_ids=transfer_ids)


async def write_hold(connection: Driver, transfer_id: str, change: Change) -> HoldView | None:
    """Place the change's new hold, or move the transfer's hold out of `active`."""
    if change.new_hold is not None:
        new = change.new_hold
        (placed,) = await _PLACE.objects(
            connection,
            HoldView,
            transfer_id=transfer_id,
            account_id=new.account_id,
            amount=new.amount,
            ttl_s=new.ttl_s,
        )
        return placed
    if change.hold_transition is None:
        return None
    transition = change.hold_transition
    moved = await _MOVES[transition.while_unexpired].objects(
        connection, HoldView, transfer_id=transfer_id, status=transition.status
    )
    if not moved:  # the account lock kept the status: only the clock can have moved
        raise HoldExpired(f"the hold of transfer {transfer_id} expired while it was being captured")
    return moved[0]
