"""Reading an account for a step (locked or not) and writing it back (plain or compare-and-set)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shards.schema import HoldStatus, accounts, holds


@dataclass(frozen=True)
class LapsedHold:
    transfer_id: str
    amount: int


@dataclass(frozen=True)
class AccountState:
    """An account as a step sees it, with the holds that have lapsed by the database clock."""

    account_id: str
    currency: str
    balance: int
    held: int
    status: str
    version: int
    lapsed: tuple[LapsedHold, ...]

    @property
    def live_held(self) -> int:
        """Held by holds that have not lapsed: what really reduces available funds."""
        return self.held - sum(hold.amount for hold in self.lapsed)

    @property
    def available(self) -> int:
        return self.balance - self.live_held


async def read_account(
    connection: AsyncConnection, account_id: str, *, lock: bool
) -> AccountState | None:
    query = select(
        accounts.c.currency,
        accounts.c.balance,
        accounts.c.held,
        accounts.c.status,
        accounts.c.version,
    ).where(accounts.c.account_id == account_id)
    if lock:
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    if row is None:
        return None
    lapsed = await _lapsed_holds(connection, account_id) if row.held > 0 else ()
    return AccountState(
        account_id, row.currency, row.balance, row.held, row.status, row.version, lapsed
    )


async def _lapsed_holds(connection: AsyncConnection, account_id: str) -> tuple[LapsedHold, ...]:
    query = select(holds.c.transfer_id, holds.c.amount).where(
        holds.c.account_id == account_id,
        holds.c.status == HoldStatus.ACTIVE,
        holds.c.expires_at <= func.clock_timestamp(),
    )
    rows = (await connection.execute(query)).all()
    return tuple(LapsedHold(row.transfer_id, row.amount) for row in rows)


async def write_account(
    connection: AsyncConnection,
    state: AccountState,
    *,
    balance: int,
    held: int,
    status: str | None = None,
    compare_version: bool,
) -> bool:
    """Store new absolute values and bump the version; False when the version moved (optimistic)."""
    statement = (
        update(accounts)
        .where(accounts.c.account_id == state.account_id)
        .values(
            balance=balance,
            held=held,
            status=status or state.status,
            version=accounts.c.version + 1,
            updated_at=func.now(),
        )
    )
    if compare_version:
        statement = statement.where(accounts.c.version == state.version)
    result = await connection.execute(statement)
    return result.rowcount == 1
