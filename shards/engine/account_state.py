"""An account as a step sees it: read by shards.engine.reads, written by shards.engine.writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class LapsedHold:
    """A hold past its expires_at that the account's `held` column still counts."""

    transfer_id: str
    amount: int


class AccountState(NamedTuple):
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
        """What a step may take: the balance less the holds that have not lapsed."""
        return self.balance - self.live_held


# The account columns a step reads, in AccountState's field order (all but `lapsed`).
ACCOUNT_COLUMN_NAMES = tuple(name for name in AccountState._fields if name != "lapsed")
