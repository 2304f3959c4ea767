"""Markers on accounts not opened yet (migration 0006, shards.engine.openings): a compensation on
an unknown account leaves its marker, the account's opening waits for a marker being written
(and the other way round), and a late step of the same request is refused once the account opens,
single or batched, however the opening and the steps race."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg
import pytest

from shards.audit import run_audit
from shards.errors import AlreadyCompensated, BusinessError, IdempotencyConflict
from shards.fingerprints import fingerprint_of
from shards.ledger import Ledger
from shards.records import BatchStep, StepResult
from tests.shards.support import (
    NewId,
    assert_refunded_or_never_debited,
    entry_kinds,
    id_on_other_shard,
    open_funded,
)

AMOUNT = 100
FUNDS = 1_000
RACES = 24  # transfers raced at once, each against its own account's opening
STILL_WAITING_S = 0.3


def _step(transfer: str, account_id: str) -> BatchStep:
    return BatchStep(transfer, account_id, AMOUNT, "USD", None)


@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
async def test_a_refund_on_an_unknown_source_refuses_the_debit_once_it_opens(
    ledger: Ledger, new_id: NewId, batched: bool
) -> None:
    source, transfer = new_id("acc"), new_id("t")
    if batched:
        [refund] = await ledger.refund_batch([_step(transfer, source)])
        assert isinstance(refund, StepResult)
    else:
        refund = await ledger.refund(transfer, source, AMOUNT, "USD")
    assert refund.marker
    await open_funded(ledger, source, FUNDS)

    with pytest.raises(AlreadyCompensated):  # a late run of the request
        await ledger.debit(transfer, source, AMOUNT, "USD")
    [late] = await ledger.debit_batch([_step(transfer, source)])

    assert isinstance(late, AlreadyCompensated)
    assert (await ledger.get_account(source)).balance == FUNDS
    assert await entry_kinds(ledger.router, source) == [
        (transfer, "refund", AMOUNT, True),
        (f"dep-{source}", "deposit", FUNDS, False),
    ]


async def test_a_void_on_an_unknown_account_refuses_the_hold_once_it_opens(
    ledger: Ledger, new_id: NewId
) -> None:
    account, transfer = new_id("acc"), new_id("t")
    assert (await ledger.void(transfer, account, AMOUNT)).marker
    await open_funded(ledger, account, FUNDS)

    with pytest.raises(AlreadyCompensated):
        await ledger.hold(transfer, account, AMOUNT, ttl_s=60, currency="USD")

    assert (await ledger.get_account(account)).held == 0


async def test_a_marker_replays_after_the_account_opens(ledger: Ledger, new_id: NewId) -> None:
    """The fence's re-run (its task was lost) finds its marker, on the row or not."""
    target, transfer = new_id("acc"), new_id("t")
    first = await ledger.fence_credit(transfer, target, AMOUNT, "USD")
    await open_funded(ledger, target, 0)

    again = await ledger.fence_credit(transfer, target, AMOUNT, "USD")
    [batched] = await ledger.fence_credit_batch([_step(transfer, target)])

    assert (first.marker, again.marker, again.replayed) == (True, True, True)
    assert isinstance(batched, StepResult)
    assert (batched.marker, batched.replayed) == (True, True)


async def test_another_request_of_the_id_moves_nothing_beside_a_marker_without_a_row(
    ledger: Ledger, new_id: NewId
) -> None:
    """The worker dies right after the refund's marker commits on an unknown source; the source
    is opened and funded, and a request of the same id with other fields arrives: its debit is
    refused, its refund owes nothing, and the balance is the funding's."""
    source, transfer = new_id("acc"), new_id("t")
    ours = fingerprint_of("transfer", source, new_id("acc"), AMOUNT, "USD")
    other = fingerprint_of("transfer", source, new_id("acc"), 2 * AMOUNT, "USD")
    assert (await ledger.refund(transfer, source, AMOUNT, "USD", ours)).marker
    await open_funded(ledger, source, FUNDS)

    with pytest.raises(IdempotencyConflict):
        await ledger.debit(transfer, source, 2 * AMOUNT, "USD", other)
    [batched] = await ledger.debit_batch([BatchStep(transfer, source, 2 * AMOUNT, "USD", other)])
    refund = await ledger.refund(transfer, source, 2 * AMOUNT, "USD", other)

    assert isinstance(batched, IdempotencyConflict)
    assert refund.marker  # never written: nothing of the other request can land here
    assert (await ledger.get_account(source)).balance == FUNDS
    assert await entry_kinds(ledger.router, source) == [
        (transfer, "refund", AMOUNT, True),
        (f"dep-{source}", "deposit", FUNDS, False),
    ]


@pytest.mark.parametrize(
    ("account_id", "balance_after", "marker"),
    [("not an id!", None, True), ("acc-well-formed", None, False)],
    ids=["malformed account id", "no balance on money moved"],
)
async def test_entries_keep_their_checks_without_the_foreign_key(
    dsns: list[str], account_id: str, balance_after: int | None, marker: bool
) -> None:
    """Migration 0006 dropped the foreign key for the markers; the account id's format is still
    checked, and only a marker may go without a balance."""
    async with await psycopg.AsyncConnection.connect(dsns[0]) as connection:
        with pytest.raises(psycopg.errors.CheckViolation):
            await connection.execute(
                "INSERT INTO entries (transfer_id, kind, account_id, amount, balance_after, marker)"
                " VALUES ('t-checked', 'credit', %s, 1, %s, %s)",
                [account_id, balance_after, marker],
            )


@pytest.fixture
async def side(dsns: list[str]) -> AsyncIterator[psycopg.AsyncConnection[object]]:
    """A connection of its own to the first shard, as another process would hold one."""
    async with await psycopg.AsyncConnection.connect(dsns[0]) as connection:
        yield connection


async def _still_waiting(task: asyncio.Task[object]) -> bool:
    await asyncio.sleep(STILL_WAITING_S)
    return not task.done()


async def test_opening_an_account_waits_for_a_marker_being_written_on_it(
    ledger: Ledger, new_id: NewId, side: psycopg.AsyncConnection[object]
) -> None:
    account = _on_first_shard(ledger, new_id)
    async with side.transaction():  # a marker's transaction, between its lock and its commit
        await side.execute("SELECT lock_account_openings(%s)", [[account]])
        opening = asyncio.create_task(ledger.open_account(account, "USD"))
        assert await _still_waiting(opening)  # the insert's trigger waits for the lock
    assert (await opening).account_id == account


async def test_a_bulk_insert_of_accounts_waits_for_a_marker_on_any_of_them(
    ledger: Ledger, new_id: NewId, side: psycopg.AsyncConnection[object], dsns: list[str]
) -> None:
    """Many rows in one statement (a seed, an import): the statement's trigger takes every
    new row's opening lock, in the locks' order (no deadlock against a batch's markers)."""
    accounts = [_on_first_shard(ledger, new_id) for _ in range(3)]
    rows = ", ".join(["(%s, 'USD')"] * len(accounts))
    insert = f"INSERT INTO accounts (account_id, currency) VALUES {rows}"  # noqa: S608
    async with await psycopg.AsyncConnection.connect(dsns[0]) as bulk:
        async with side.transaction():  # a marker on the second account, being written
            await side.execute("SELECT lock_account_openings(%s)", [accounts[1:2]])
            inserting = asyncio.create_task(bulk.execute(insert, accounts))
            assert await _still_waiting(inserting)
        await inserting
        await bulk.commit()
    assert [(await ledger.get_account(account)).account_id for account in accounts] == accounts


async def test_a_marker_on_an_account_being_opened_waits_and_lands_on_its_row(
    ledger: Ledger, new_id: NewId, side: psycopg.AsyncConnection[object]
) -> None:
    account, transfer = _on_first_shard(ledger, new_id), new_id("t")
    async with side.transaction():  # the account's opening, inserted, not committed yet
        await side.execute(
            "INSERT INTO accounts (account_id, currency) VALUES (%s, 'USD')", [account]
        )
        fence = asyncio.create_task(ledger.fence_credit(transfer, account, AMOUNT, "USD"))
        assert await _still_waiting(fence)
    assert (await fence).marker
    assert (await ledger.get_account(account)).version == 2  # the marker's write, on the row


def _on_first_shard(ledger: Ledger, new_id: NewId) -> str:
    while ledger.router.index_for(account := new_id("acc")) != 0:
        pass
    return account


async def _open_and_debit(ledger: Ledger, source: str, transfer: str) -> None:
    await open_funded(ledger, source, FUNDS)
    with contextlib.suppress(AlreadyCompensated):
        await ledger.debit(transfer, source, AMOUNT, "USD")


async def _refund(ledger: Ledger, source: str, transfer: str, *, batched: bool) -> None:
    if batched:
        [outcome] = await ledger.refund_batch([_step(transfer, source)])
        assert not isinstance(outcome, BusinessError)
    else:
        await ledger.refund(transfer, source, AMOUNT, "USD")


@pytest.mark.races
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
async def test_refunds_racing_the_sources_opening_and_debit_never_keep_money(
    ledger: Ledger, new_id: NewId, batched: bool
) -> None:
    """Each transfer: its refund (an earlier run's compensation) against its source's opening,
    funding and a later run's debit, all at once. Recomputed from the entries: every source
    ends with its funds, whichever got there first."""
    transfers = {new_id("acc"): new_id("t") for _ in range(RACES)}
    await asyncio.gather(
        *(_open_and_debit(ledger, source, transfer) for source, transfer in transfers.items()),
        *(_refund(ledger, s, t, batched=batched) for s, t in transfers.items()),
    )

    for source, transfer in transfers.items():
        await assert_refunded_or_never_debited(ledger, source, transfer, FUNDS)
    assert not (await run_audit(ledger.router, quiet=True)).account_mismatches


async def _open_and_credit(ledger: Ledger, target: str, transfer: str, digest: str) -> None:
    await open_funded(ledger, target, 0)
    with contextlib.suppress(AlreadyCompensated):
        await ledger.credit(transfer, target, AMOUNT, "USD", digest)


@pytest.mark.races
async def test_fences_racing_the_targets_opening_and_credit_never_pay_twice(
    ledger: Ledger, new_id: NewId
) -> None:
    """Each transfer debited on one shard, its credit fenced on another (its target unknown)
    while the target opens and a second run credits it: where the fence answered with a
    marker the source is refunded, and then no credit may stand. Money is counted on the
    accounts: the source's refunds and the targets' credits add up to what was debited."""
    source = await open_funded(ledger, new_id("acc"), RACES * AMOUNT)
    targets = [id_on_other_shard(ledger.router, new_id, source) for _ in range(RACES)]
    transfers = [new_id("t") for _ in targets]
    digests = [fingerprint_of("transfer", source, target, AMOUNT, "USD") for target in targets]
    for transfer, digest in zip(transfers, digests, strict=True):
        await ledger.debit(transfer, source, AMOUNT, "USD", digest)
    racing = list(zip(targets, transfers, digests, strict=True))
    fences, _ = await asyncio.gather(
        asyncio.gather(*(ledger.fence_credit(t, a, AMOUNT, "USD", d) for a, t, d in racing)),
        asyncio.gather(*(_open_and_credit(ledger, a, t, d) for a, t, d in racing)),
    )
    for (_, transfer, digest), fence in zip(racing, fences, strict=True):
        if fence.marker:  # the credit can never land: the saga refunds
            await ledger.refund(transfer, source, AMOUNT, "USD", digest)

    credited = [(await ledger.get_account(target)).balance for target in targets]
    refunded = (await ledger.get_account(source)).balance
    assert set(credited) <= {0, AMOUNT}
    assert refunded + sum(credited) == RACES * AMOUNT
    assert refunded == AMOUNT * sum(fence.marker for fence in fences)
