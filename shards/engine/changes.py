"""What a step decided to write, as data: shards.engine.writes applies it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from shards.engine.account_state import AccountState
from shards.records import HoldView, StepResult


class PriorEntry(NamedTuple):
    """An entry already recorded for the transfer being applied."""

    kind: str
    account_id: str
    amount: int
    marker: bool
    balance_after: int | None  # None on a marker written before its account was opened
    fingerprint: str | None  # None on entries older than migration 0002

    def result(self, transfer_id: str) -> StepResult:
        """This entry as a step's result, marked `replayed`: an earlier call applied it."""
        return StepResult(
            transfer_id,
            self.kind,
            self.account_id,
            self.amount,
            self.balance_after or 0,
            marker=self.marker,
            replayed=True,
        )


class StepContext(NamedTuple):
    """Everything a step may decide on, read inside its transaction."""

    transfer_id: str
    states: dict[str, AccountState | None]
    prior: dict[str, PriorEntry]
    hold: HoldView | None = None  # `expired` judged by the database clock
    # The request's digest: written on the step's entries, compared with those found.
    fingerprint: str | None = None


class AccountWrite(NamedTuple):
    """New absolute values for one account (its version grows by one)."""

    state: AccountState
    balance: int
    held: int
    status: str | None = None


class NewEntry(NamedTuple):
    """An entry to insert; `transfer_id` None means the transfer of the step being applied."""

    kind: str
    account_id: str
    amount: int
    balance_after: int | None  # None: a marker on an account not opened yet
    marker: bool = False
    transfer_id: str | None = None


@dataclass(frozen=True)
class NewHold:
    """A hold to place on `account_id`, lapsing `ttl_s` seconds after the shard's clock now."""

    account_id: str
    amount: int
    ttl_s: float


@dataclass(frozen=True)
class HoldTransition:
    """Move the transfer's hold out of 'active'; `while_unexpired` re-judges the database clock."""

    status: str
    while_unexpired: bool = False


class Change(NamedTuple):
    """All a step writes in one guarded statement: account rows, entries, the hold's change."""

    account_writes: list[AccountWrite]
    entries: Sequence[NewEntry] = ()
    new_hold: NewHold | None = None
    hold_transition: HoldTransition | None = None
    # Results found applied that the step hands back beside what it writes (one side of a pair).
    replayed: tuple[StepResult, ...] = ()


class Replay(NamedTuple):
    """The step was applied before: hand back the first result, write nothing."""

    results: tuple[StepResult, ...]
