"""Plain immutable results handed back by the shard layer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class StepResult(NamedTuple):
    """An applied entry. `replayed` is true when an earlier call had applied it already."""

    transfer_id: str
    kind: str
    account_id: str
    amount: int
    balance_after: int
    marker: bool = False
    replayed: bool = False


@dataclass(frozen=True)
class AccountView:
    """An account as users see it: `held` counts unexpired holds, so held + available = balance."""

    account_id: str
    currency: str
    balance: int
    held: int
    available: int
    status: str
    version: int
    shard: int


@dataclass(frozen=True)
class HoldView:
    """A hold as the ledger hands it back; `replayed` when an earlier call had placed it."""

    transfer_id: str
    account_id: str
    amount: int
    status: str
    expires_at: datetime
    expired: bool
    replayed: bool = False


class BatchStep(NamedTuple):
    """One saga step of one transfer inside a batched call (see Ledger.debit_batch).

    The same fields as a single step: `amount` in minor units, `fingerprint` the digest of the
    transfer's request, written on its entries and compared with those found.
    """

    transfer_id: str
    account_id: str
    amount: int
    currency: str
    fingerprint: str


@dataclass(frozen=True)
class Ending:
    """How a transfer ended with nothing moved, as its workflow reported it (the error's code
    and message); `source_account_id` is where its refund (or a hold's release) would be."""

    transfer_id: str
    fingerprint: str
    source_account_id: str
    code: str
    message: str
