"""The decisions of each step, as pure functions of what the step read: no I/O here.

Each `plan_*` returns a `Replay` (applied before, same fields), a `Change` to write, or raises a
business error. Balances are computed as new absolute values, so a lost update would show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from shards.engine.account_state import AccountState
from shards.engine.changes import (
    AccountWrite,
    Change,
    HoldTransition,
    NewEntry,
    NewHold,
    PriorEntry,
    Replay,
    StepContext,
)
from shards.errors import (
    AccountNotEmpty,
    AccountNotFound,
    AccountNotOpen,
    AlreadyCompensated,
    CurrencyMismatch,
    HoldExpired,
    HoldNotActive,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
)
from shards.records import StepResult
from shards.schema import AccountStatus, EntryKind, HoldStatus
from shards.validation import MAX_AMOUNT

# Kinds whose marker entries are replayed to their own callers; a marker under any other kind
# fences that step out (see plan_fence_credit).
COMPENSATIONS = frozenset({EntryKind.REFUND, EntryKind.RELEASE})


class Step(NamedTuple):
    """One step of a transfer on one account; `currency` None skips the currency check."""

    transfer_id: str
    account_id: str
    amount: int
    currency: str | None = None


def other_request(ctx: StepContext) -> PriorEntry | None:
    """An entry of this transfer id recorded here for another request (another digest); entries
    older than migration 0002 carry none and are compared field by field in replay_of."""
    if ctx.fingerprint is None:
        return None
    for prior in ctx.prior.values():
        if prior.fingerprint is not None and prior.fingerprint != ctx.fingerprint:
            return prior
    return None


def refuse_other_request(ctx: StepContext) -> None:
    """Every step of a request is refused where its id's entries are another request's: two
    requests never share an id's money."""
    other = other_request(ctx)
    if other is not None:
        raise IdempotencyConflict(
            f"transfer {ctx.transfer_id} was recorded here for another request (its "
            f"{other.kind} of {other.amount} on {other.account_id}); this one differs"
        )


def replay_of(ctx: StepContext, kind: str, account_id: str, amount: int) -> Replay | None:
    """The earlier result of this step, if it was applied before with the same account and amount.

    None when it was not; IdempotencyConflict when it was with other fields, or by another
    request; AlreadyCompensated when a marker settled it first.
    """
    refuse_other_request(ctx)
    prior = ctx.prior.get(kind)
    if prior is None:
        return None
    if prior.marker and kind not in COMPENSATIONS:
        raise AlreadyCompensated(
            f"transfer {ctx.transfer_id} was settled without its {kind}; the late {kind} is refused"
        )
    if prior.account_id != account_id or prior.amount != amount:
        raise IdempotencyConflict(
            f"transfer {ctx.transfer_id} already has a {kind} of {prior.amount} on "
            f"{prior.account_id}; a {kind} of {amount} on {account_id} is refused"
        )
    return Replay((prior.result(ctx.transfer_id),))


def refuse_if_compensated(ctx: StepContext, compensation: str) -> None:
    """Steps are monotonic: once compensated, the step is refused even where it applied before
    (a re-run must not mistake a refunded debit for a live one)."""
    if compensation in ctx.prior:
        raise AlreadyCompensated(
            f"transfer {ctx.transfer_id} was compensated ({compensation}) before this step "
            "arrived; the step is refused"
        )


def require_account(
    ctx: StepContext, account_id: str, currency: str | None, *, must_be_open: bool = True
) -> AccountState:
    """The account's state, if it exists, is open (unless `must_be_open` is False) and holds
    `currency`; the matching error otherwise.
    """
    state = ctx.states[account_id]
    if state is None:
        raise AccountNotFound(f"account {account_id} does not exist")
    if must_be_open and state.status != AccountStatus.OPEN:
        raise AccountNotOpen(f"account {account_id} is {state.status}")
    if currency is not None and currency != state.currency:
        raise CurrencyMismatch(
            f"account {account_id} holds {state.currency}, the transfer is in {currency}"
        )
    return state


def nothing_to_compensate(ctx: StepContext, kind: str, step: Step) -> Change | None:
    """A compensation on an account that does not exist: no money can have moved there. Its
    marker is written all the same, without the account's row, so that the step it settles is
    refused if the account is opened later (see shards.engine.openings)."""
    if ctx.states[step.account_id] is not None:
        return None
    return Change([], [NewEntry(kind, step.account_id, step.amount, None, marker=True)])


def _unwritten_marker(ctx: StepContext, kind: str, step: Step) -> Replay:
    result = StepResult(ctx.transfer_id, kind, step.account_id, step.amount, 0, marker=True)
    return Replay((result,))


def _debited_balance(state: AccountState, amount: int) -> int:
    if state.available < amount:
        # Not how much it has: the message reaches whoever asked, who may not own the account.
        raise InsufficientFunds(f"account {state.account_id} has too little available for {amount}")
    return state.balance - amount


def _credited_balance(state: AccountState, amount: int) -> int:
    if state.balance + amount > MAX_AMOUNT:
        raise InvalidAmount(f"account {state.account_id} balance would exceed {MAX_AMOUNT}")
    return state.balance + amount


def _marker(kind: str, state: AccountState, amount: int) -> Change:
    """A compensation for a step that never happened here: it moves no money and refuses the
    late step (or, for a refund, records one settled outside the ledger)."""
    marker = NewEntry(kind, state.account_id, amount, state.balance, marker=True)
    return Change([AccountWrite(state, state.balance, state.live_held)], [marker])


def _entry(kind: str, state: AccountState, amount: int, balance: int) -> NewEntry:
    return NewEntry(kind, state.account_id, amount, balance)


def plan_debit(ctx: StepContext, step: Step, kind: str) -> Change | Replay:
    """Money leaves an open account, within its available funds: a saga's debit, or a
    withdrawal (`kind`)."""
    refuse_if_compensated(ctx, EntryKind.REFUND)
    return _move(ctx, step, kind, _debited_balance)


def plan_credit(ctx: StepContext, step: Step, kind: str) -> Change | Replay:
    """Money enters an open account: a saga's credit, or a deposit (`kind`); never the credit of
    a refunded transfer (seen here when both accounts share a shard; elsewhere its fence refuses
    it)."""
    if kind == EntryKind.CREDIT:
        refuse_if_compensated(ctx, EntryKind.REFUND)
    return _move(ctx, step, kind, _credited_balance)


def _move(
    ctx: StepContext, step: Step, kind: str, new_balance: Callable[[AccountState, int], int]
) -> Change | Replay:
    """This request's entry of `kind` if recorded already; else the account's `new_balance`
    (which refuses what the account cannot do) and the entry that records it."""
    replay = replay_of(ctx, kind, step.account_id, step.amount)
    if replay:
        return replay
    state = require_account(ctx, step.account_id, step.currency)
    balance = new_balance(state, step.amount)
    return Change(
        [AccountWrite(state, balance, state.live_held)], [_entry(kind, state, step.amount, balance)]
    )


def plan_fence_credit(ctx: StepContext, step: Step) -> Change | Replay:
    """Settle a credit whose outcome is unknown (its attempt was cancelled, refused or lost).

    If this request's credit landed, hand it back; if not, record a credit marker so that it never
    lands: the caller may then refund the source without risking both. Never refused: where this
    request's credit can never land (the id's entries here are another request's), the answer is
    a marker that was not written.
    """
    prior = ctx.prior.get(EntryKind.CREDIT)
    if prior is not None and (prior.marker or _same_request(ctx, prior, step)):
        return Replay((prior.result(ctx.transfer_id),))
    if prior is not None or other_request(ctx):  # every credit of this request is refused here
        return _unwritten_marker(ctx, EntryKind.CREDIT, step)
    absent = nothing_to_compensate(ctx, EntryKind.CREDIT, step)
    if absent:
        return absent
    state = require_account(ctx, step.account_id, None, must_be_open=False)
    return _marker(EntryKind.CREDIT, state, step.amount)


def _same_request(ctx: StepContext, prior: PriorEntry, step: Step) -> bool:
    if prior.fingerprint is not None and ctx.fingerprint is not None:
        return prior.fingerprint == ctx.fingerprint
    return (prior.account_id, prior.amount) == (step.account_id, step.amount)


def plan_refund(ctx: StepContext, step: Step) -> Change | Replay:
    """Compensate the debit (or a post's capture): pays back even a frozen or closed account.

    With no debit recorded, a marker is written so that the debit can never land afterwards.
    Where the id's entries here are another request's (a deposit or withdrawal given this id),
    this request's debit can never land here either: nothing is owed, and the answer is a
    marker that was not written (as plan_fence_credit's), not a refusal that no retry changes.
    """
    original = ctx.prior.get(EntryKind.DEBIT) or ctx.prior.get(EntryKind.CAPTURE)
    # A debit that may be this request's (its digest, or none: older than migration 0002) is
    # owed even beside another request's entries: replay_of refuses it (IdempotencyConflict,
    # refund-stuck) for an operator to settle, never a FAILED while it stands.
    maybe_ours = original is not None and original.fingerprint in (None, ctx.fingerprint)
    if not maybe_ours and other_request(ctx):
        return _unwritten_marker(ctx, EntryKind.REFUND, step)
    replay = replay_of(ctx, EntryKind.REFUND, step.account_id, step.amount)
    if replay:
        return replay
    absent = nothing_to_compensate(ctx, EntryKind.REFUND, step)
    if absent:
        return absent
    # A marker moves no money: no currency to check (a debit refused for its currency is fenced).
    currency = None if original is None else step.currency
    state = require_account(ctx, step.account_id, currency, must_be_open=False)
    if original is None:
        return _marker(EntryKind.REFUND, state, step.amount)
    if original.account_id != step.account_id or original.amount != step.amount:
        raise IdempotencyConflict(
            f"transfer {ctx.transfer_id} took {original.amount} from {original.account_id}; "
            f"a refund of {step.amount} to {step.account_id} does not match it"
        )
    balance = _credited_balance(state, step.amount)
    return Change(
        [AccountWrite(state, balance, state.live_held)],
        [_entry(EntryKind.REFUND, state, step.amount, balance)],
    )


def plan_settled_by_hand(ctx: StepContext, step: Step) -> Change | Replay:
    """An operator settled the compensation outside the ledger: a refund marker, so that no
    refund (nor a late debit) can land after it; the debit stands, written off (see the audit).
    A refund found here, real or marker, is handed back: the ledger settled it first."""
    replay = replay_of(ctx, EntryKind.REFUND, step.account_id, step.amount)
    if replay:
        return replay
    absent = nothing_to_compensate(ctx, EntryKind.REFUND, step)
    if absent:
        return absent
    state = require_account(ctx, step.account_id, None, must_be_open=False)
    return _marker(EntryKind.REFUND, state, step.amount)


def plan_hold(ctx: StepContext, step: Step, ttl_s: float) -> Change | Replay:
    """Hold `amount` of the source's available funds for `ttl_s` seconds (a pending transfer)."""
    replay = replay_of(ctx, EntryKind.HOLD, step.account_id, step.amount)
    if replay:
        return replay
    refuse_if_compensated(ctx, EntryKind.RELEASE)
    state = require_account(ctx, step.account_id, step.currency)
    _debited_balance(state, step.amount)  # a hold beyond the available funds is refused
    return Change(
        [AccountWrite(state, state.balance, state.live_held + step.amount)],
        [_entry(EntryKind.HOLD, state, step.amount, state.balance)],
        new_hold=NewHold(state.account_id, step.amount, ttl_s),
    )


def plan_post(ctx: StepContext, account_id: str, amount: int | None) -> Change | Replay:
    """Post the hold: take `amount` (the whole hold when None) of a live hold as a `capture`
    entry, and give what is left of it back (a `release` entry).

    A post found on the shard (its capture entry) is handed back whatever amount is asked now:
    the first post decided, and the caller compares.
    """
    refuse_if_compensated(ctx, EntryKind.REFUND)
    refuse_other_request(ctx)
    prior = ctx.prior.get(EntryKind.CAPTURE)
    if prior is not None and prior.account_id == account_id:
        return Replay((prior.result(ctx.transfer_id),))
    hold = ctx.hold
    if hold is None or hold.account_id != account_id:
        raise HoldNotActive(f"transfer {ctx.transfer_id} has no hold on account {account_id}")
    amount = hold.amount if amount is None else amount
    if hold.expired:
        raise HoldExpired(f"the hold of transfer {ctx.transfer_id} expired at {hold.expires_at}")
    if hold.status != HoldStatus.ACTIVE:
        raise HoldNotActive(f"the hold of transfer {ctx.transfer_id} is {hold.status}")
    if amount > hold.amount:
        raise InvalidAmount(f"cannot post {amount}: the hold is for {hold.amount}")
    state = require_account(ctx, account_id, None)
    balance = state.balance - amount
    entries = [_entry(EntryKind.CAPTURE, state, amount, balance)]
    if amount < hold.amount:
        entries.append(_entry(EntryKind.RELEASE, state, hold.amount - amount, balance))
    return Change(
        [AccountWrite(state, balance, state.live_held - hold.amount)],
        entries,
        hold_transition=HoldTransition(HoldStatus.CAPTURED, while_unexpired=True),
    )


def plan_void(ctx: StepContext, step: Step) -> Change | Replay:
    """Void the hold (a `release` entry); without one, write a marker so that the hold can never
    land later.

    A hold found posted is not voided: its capture entry is handed back (kind `capture`), and the
    caller owes it a credit or a refund; or the refund that settled it (kind `refund`).
    """
    refuse_other_request(ctx)
    hold = ctx.hold
    prior = ctx.prior.get(EntryKind.RELEASE)
    if hold is not None and (hold.account_id, hold.amount) != (step.account_id, step.amount):
        raise IdempotencyConflict(
            f"the hold of transfer {ctx.transfer_id} is {hold.amount} on {hold.account_id}, "
            f"not {step.amount} on {step.account_id}"
        )
    capture = ctx.prior.get(EntryKind.CAPTURE)
    if hold is not None and hold.status == HoldStatus.CAPTURED and capture is not None:
        # refunded already: that settled it; else the caller owes the capture its credit
        settled = ctx.prior.get(EntryKind.REFUND) or capture
        return Replay((settled.result(ctx.transfer_id),))
    if prior is not None:
        return Replay((prior.result(ctx.transfer_id),))
    absent = nothing_to_compensate(ctx, EntryKind.RELEASE, step)
    if absent:
        return absent
    state = require_account(ctx, step.account_id, None, must_be_open=False)
    if hold is None:
        return _marker(EntryKind.RELEASE, state, step.amount)
    if any(lapsed.transfer_id == ctx.transfer_id for lapsed in state.lapsed):
        # The lapsed-hold sweep of this write records the release. Judged from the account read,
        # not `hold.expired`: the hold may lapse between the two reads, and is then released here.
        return Change([AccountWrite(state, state.balance, state.live_held)])
    return Change(
        [AccountWrite(state, state.balance, state.live_held - hold.amount)],
        [_entry(EntryKind.RELEASE, state, hold.amount, state.balance)],
        hold_transition=HoldTransition(HoldStatus.RELEASED),
    )


def plan_transfer_within_shard(
    ctx: StepContext, source: Step, target_account_id: str
) -> Change | Replay:
    """Debit and credit in one local transaction: both entries or neither.

    A batch runs a same-shard pair as two steps, its debit then its credit: a run of the same
    request between them (or after the batch's task was lost there) finds one side applied. It
    hands that side back and writes the other, as the batch's next step would; a fenced credit
    refuses it (AlreadyCompensated: the transfer is being compensated), like any late credit.
    """
    refuse_if_compensated(ctx, EntryKind.REFUND)
    debit = replay_of(ctx, EntryKind.DEBIT, source.account_id, source.amount)
    credit = replay_of(ctx, EntryKind.CREDIT, target_account_id, source.amount)
    if debit and credit:
        return Replay(debit.results + credit.results)
    half = EntryKind.DEBIT if debit else EntryKind.CREDIT if credit else None
    if half is not None and (
        ctx.fingerprint is None or ctx.prior[half].fingerprint != ctx.fingerprint
    ):
        # Only this very request's half (its digest on it) is another run's first step; an entry
        # older than migration 0002 carries no digest and may be another transfer's side.
        raise IdempotencyConflict(
            f"transfer {ctx.transfer_id} has one side applied: it was not a same-shard transfer"
        )
    # Both accounts are judged before either balance, as when neither side was found.
    sides = []
    if not debit:  # a debit found stands, even if its account was frozen since
        sides.append((EntryKind.DEBIT, require_account(ctx, source.account_id, source.currency)))
    if not credit:
        sides.append((EntryKind.CREDIT, require_account(ctx, target_account_id, source.currency)))
    writes: list[AccountWrite] = []
    new_entries: list[NewEntry] = []
    for kind, state in sides:
        moved = _debited_balance if kind == EntryKind.DEBIT else _credited_balance
        balance = moved(state, source.amount)
        writes.append(AccountWrite(state, balance, state.live_held))
        new_entries.append(_entry(kind, state, source.amount, balance))
    found = (debit.results if debit else ()) + (credit.results if credit else ())
    return Change(writes, new_entries, replayed=found)


def plan_status(ctx: StepContext, account_id: str, status: AccountStatus) -> Change | Replay:
    """freeze, unfreeze or close; closing needs an empty account with no live hold."""
    state = require_account(ctx, account_id, None, must_be_open=False)
    if state.status == status:
        return Replay(())
    if state.status == AccountStatus.CLOSED:
        raise AccountNotOpen(f"account {account_id} is closed for good")
    if status == AccountStatus.CLOSED and (state.balance or state.live_held):
        raise AccountNotEmpty(
            f"account {account_id} still holds {state.balance} ({state.live_held} held)"
        )
    return Change([AccountWrite(state, state.balance, state.live_held, status=status)])
