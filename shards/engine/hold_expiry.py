"""The hold-expiry rule, written once: a hold lapses when its shard's `clock_timestamp()` reaches
its `expires_at`, which is that same clock plus the hold's time-to-live when it was placed.

Always the database's clock, never the worker's: every worker (and every replay) agrees, and a
post that reaches the shard after the expiry is refused there, however late its worker thinks it
is. Placing, reading, posting, sweeping and the accounts users see all use these expressions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, bindparam, func
from sqlalchemy.sql.elements import ColumnElement

from shards.schema import holds

LAPSED: ColumnElement[bool] = holds.c.expires_at <= func.clock_timestamp()
"""True for a hold past its expiry; `~LAPSED` is a hold still live (`expires_at > now`)."""

EXPIRES_AT: ColumnElement[Any] = func.clock_timestamp() + func.make_interval(
    0, 0, 0, 0, 0, 0, bindparam("ttl_s", type_=Float)
)
"""A new hold's `expires_at`: the shard's clock now plus the `ttl_s` parameter, in seconds."""

HOLD_COLUMNS: tuple[ColumnElement[Any], ...] = (
    holds.c.transfer_id,
    holds.c.account_id,
    holds.c.amount,
    holds.c.status,
    holds.c.expires_at,
    LAPSED.label("expired"),
)
"""A hold as `shards.records.HoldView` reads it, `expired` judged by the shard's clock."""
