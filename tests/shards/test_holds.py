"""Holds: reservations that lapse by the shard's clock, captured or released exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from shards.audit import run_audit
from shards.engine.account_state import AccountState
from shards.engine.changes import Change, StepContext
from shards.engine.decisions import Step, plan_void
from shards.errors import (
    AlreadyCompensated,
    HoldExpired,
    HoldNotActive,
    InsufficientFunds,
    InvalidTtl,
)
from shards.ledger import Ledger
from shards.records import HoldView, StepResult
from shards.validation import MAX_HOLD_TTL_S
from tests.shards.support import NewId, entry_kinds, open_funded

LAPSE_S = 1.2  # a little past a 1 s time-to-live
ONE_SECOND = timedelta(seconds=1)


async def _shard_clock(ledger: Ledger, account_id: str) -> datetime:
    async with ledger.router.shard_for(account_id).begin() as connection:
        now: datetime = (await connection.execute(select(func.clock_timestamp()))).scalar_one()
    return now


async def test_lapsed_hold_frees_funds_with_no_other_operation(
    ledger: Ledger, new_id: NewId
) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")

    clock_before = await _shard_clock(ledger, account)
    hold = await ledger.hold(transfer, account, 70, ttl_s=1)
    clock_after = await _shard_clock(ledger, account)
    during = await ledger.get_account(account)
    await asyncio.sleep(LAPSE_S)
    after = await ledger.get_account(account)

    assert (hold.status, hold.expired, hold.replayed) == ("active", False, False)
    # The deadline comes from the shard's clock, whatever this process's clock says.
    assert clock_before + ONE_SECOND <= hold.expires_at <= clock_after + ONE_SECOND
    assert (during.available, during.held) == (30, 70)
    # Nothing has written to the account since: the shard's clock alone freed the funds.
    assert (after.available, after.held, after.version) == (100, 0, during.version)
    lapsed = await ledger.get_hold(transfer, account)
    assert lapsed is not None
    assert (lapsed.status, lapsed.expired) == ("active", True)


async def test_post_after_expiry_is_refused(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")
    await ledger.hold(transfer, account, 70, ttl_s=1)
    await asyncio.sleep(LAPSE_S)

    with pytest.raises(HoldExpired):
        await ledger.post(transfer, account)
    assert (await ledger.get_account(account)).balance == 100


async def test_post_of_a_live_hold_takes_the_money(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")
    await ledger.hold(transfer, account, 70, ttl_s=60)

    captured = await ledger.post(transfer, account)
    again = await ledger.post(transfer, account)

    assert (captured.kind, captured.amount, captured.balance_after) == ("capture", 70, 30)
    assert again.replayed
    view = await ledger.get_account(account)
    assert (view.balance, view.held, view.available) == (30, 0, 30)


async def test_hold_twice_holds_once(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")

    holds = await asyncio.gather(*(ledger.hold(transfer, account, 70, 60) for _ in range(5)))

    assert sum(not hold.replayed for hold in holds) == 1
    assert len({hold.expires_at for hold in holds}) == 1
    view = await ledger.get_account(account)
    assert (view.held, view.available) == (70, 30)


async def test_post_racing_void_settles_the_hold_exactly_once(
    ledger: Ledger, new_id: NewId
) -> None:
    account = await open_funded(ledger, new_id("acc"), 10_000)
    transfers = [new_id("t") for _ in range(20)]
    for transfer in transfers:
        await ledger.hold(transfer, account, 100, ttl_s=60)

    async def capture_and_release_at_once(transfer: str) -> tuple[object, object]:
        capture, release = await asyncio.gather(
            ledger.post(transfer, account),
            ledger.void(transfer, account, 100),
            return_exceptions=True,
        )
        return capture, release

    outcomes = await asyncio.gather(*(capture_and_release_at_once(t) for t in transfers))

    captured = 0
    for capture, release in outcomes:
        assert isinstance(release, StepResult)
        if isinstance(capture, StepResult):
            # the release that comes second hands back the capture it found, never releases
            assert (release.kind, release.amount, release.replayed) == ("capture", 100, True)
            captured += 1
        else:
            assert isinstance(capture, HoldNotActive)
            assert release.kind == "release"
    view = await ledger.get_account(account)
    assert (view.balance, view.held) == (10_000 - 100 * captured, 0)
    assert account not in (await run_audit(ledger.router)).account_mismatches


async def test_void_twice_is_fine(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")
    await ledger.hold(transfer, account, 70, ttl_s=60)

    first = await ledger.void(transfer, account, 70)
    second = await ledger.void(transfer, account, 70)

    assert (first.replayed, second.replayed) == (False, True)
    view = await ledger.get_account(account)
    assert (view.balance, view.held, view.available) == (100, 0, 100)


async def test_partial_post_gives_the_rest_back(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")
    await ledger.hold(transfer, account, 40, ttl_s=60)

    captured = await ledger.post(transfer, account, 15)

    assert (captured.amount, captured.balance_after) == (15, 85)
    view = await ledger.get_account(account)
    assert (view.balance, view.held, view.available) == (85, 0, 85)
    kinds = [(kind, amount) for t, kind, amount, _ in await entry_kinds(ledger.router, account)]
    assert kinds[-3:] == [("hold", 40), ("capture", 15), ("release", 25)]


async def test_available_funds_with_several_holds(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    first, second, third = (new_id("t") for _ in range(3))
    await ledger.hold(first, account, 10, ttl_s=60)
    await ledger.hold(second, account, 20, ttl_s=60)
    await ledger.hold(third, account, 30, ttl_s=60)
    assert (await ledger.get_account(account)).available == 40
    with pytest.raises(InsufficientFunds):
        await ledger.hold(new_id("t"), account, 41, ttl_s=60)

    await ledger.void(second, account, 20)
    await ledger.post(first, account)

    view = await ledger.get_account(account)
    assert (view.balance, view.held, view.available) == (90, 30, 60)
    with pytest.raises(InsufficientFunds):
        await ledger.debit(new_id("t"), account, 61, "USD")
    assert (await ledger.debit(new_id("t"), account, 60, "USD")).balance_after == 30


async def test_debit_sweeps_a_lapsed_hold_and_the_audit_stays_clean(
    ledger: Ledger, new_id: NewId
) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    lapsed, live = new_id("t"), new_id("t")
    await ledger.hold(lapsed, account, 80, ttl_s=1)
    await asyncio.sleep(LAPSE_S)
    await ledger.hold(live, account, 5, ttl_s=60)

    debit = await ledger.debit(new_id("t"), account, 90, "USD")

    assert debit.balance_after == 10
    view = await ledger.get_account(account)
    assert (view.balance, view.held, view.available) == (10, 5, 5)
    swept = await ledger.get_hold(lapsed, account)
    assert swept is not None
    assert swept.status == "released"
    report = await run_audit(ledger.router)
    assert account not in report.account_mismatches
    assert (await ledger.void(lapsed, account, 80)).replayed


async def test_void_of_a_lapsed_hold_records_one_release(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")
    await ledger.hold(transfer, account, 80, ttl_s=1)
    await asyncio.sleep(LAPSE_S)

    released = await ledger.void(transfer, account, 80)

    assert (released.kind, released.amount, released.replayed) == ("release", 80, False)
    view = await ledger.get_account(account)
    assert (view.balance, view.held, view.available) == (100, 0, 100)
    assert account not in (await run_audit(ledger.router)).account_mismatches


async def test_void_of_a_hold_never_placed_fences_the_late_hold(
    ledger: Ledger, new_id: NewId
) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")

    marker = await ledger.void(transfer, account, 30)
    with pytest.raises(AlreadyCompensated):
        await ledger.hold(transfer, account, 30, ttl_s=60)

    assert marker.marker
    view = await ledger.get_account(account)
    assert (view.balance, view.held, view.available) == (100, 0, 100)
    assert await ledger.get_hold(transfer, account) is None


@pytest.mark.parametrize("ttl_s", [0, -1, MAX_HOLD_TTL_S + 1])
async def test_ttl_out_of_range_is_refused(ledger: Ledger, new_id: NewId, ttl_s: float) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    transfer = new_id("t")

    with pytest.raises(InvalidTtl):
        await ledger.hold(transfer, account, 10, ttl_s=ttl_s)

    assert (await ledger.get_account(account)).available == 100
    assert await ledger.get_hold(transfer, account) is None


def test_void_of_a_hold_that_lapses_between_the_two_reads_still_releases_it() -> None:
    # The account was read (nothing lapsed yet), then the hold (lapsed by now): the sweep will
    # not see it, so the release itself must move it out of `held` and record the entry.
    state = AccountState("acc-1", "USD", 100, 80, "open", 3, lapsed=())
    hold = HoldView("t-1", "acc-1", 80, "active", datetime.now(UTC), expired=True)
    context = StepContext("t-1", {"acc-1": state}, prior={}, hold=hold)

    change = plan_void(context, Step("t-1", "acc-1", 80))

    assert isinstance(change, Change)
    assert [(write.balance, write.held) for write in change.account_writes] == [(100, 0)]
    assert [(e.kind, e.amount) for e in change.entries] == [("release", 80)]
    assert change.hold_transition is not None
