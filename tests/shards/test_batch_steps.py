"""Batched saga steps on real shards: per step the single step's outcome, in input order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shards.audit import run_audit
from shards.errors import (
    AccountNotFound,
    AccountNotOpen,
    AlreadyCompensated,
    CurrencyMismatch,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
)
from shards.fingerprints import fingerprint_of
from shards.ledger import Ledger
from shards.records import BatchStep, StepResult
from shards.schema import AccountStatus
from tests.shards.support import NewId, entry_count, entry_kinds, ids_on_shard, open_funded
from tests.support.statements import recomputed_balance


def step(transfer_id: str, account_id: str, amount: int, currency: str = "USD") -> BatchStep:
    """A batched step whose fingerprint is that of its own fields (one request per id)."""
    digest = fingerprint_of("transfer", transfer_id, account_id, amount, currency)
    return BatchStep(transfer_id, account_id, amount, currency, digest)


def summary(outcomes: Sequence[StepResult | Exception]) -> list[object]:
    """What each step decided: (kind, balance_after, marker, replayed), or its error's type."""
    return [
        (o.kind, o.balance_after, o.marker, o.replayed) if isinstance(o, StepResult) else type(o)
        for o in outcomes
    ]


async def test_mixed_outcomes_leave_every_step_as_a_single_step_would(
    ledger: Ledger, new_id: NewId
) -> None:
    rich = await open_funded(ledger, new_id("acc"), 1_000)
    poor = await open_funded(ledger, new_id("acc"), 10)
    frozen = await open_funded(ledger, new_id("acc"), 500)
    await ledger.set_status(frozen, AccountStatus.FROZEN)
    closed = await open_funded(ledger, new_id("acc"), 0)
    await ledger.set_status(closed, AccountStatus.CLOSED)
    euros = await open_funded(ledger, new_id("acc"), 500, "EUR")
    steps = [
        step(new_id("t"), rich, 400),
        step(new_id("t"), poor, 11),
        step(new_id("t"), rich, 400),
        step(new_id("t"), frozen, 1),
        step(new_id("t"), closed, 1),
        step(new_id("t"), new_id("nobody"), 1),
        step(new_id("t"), euros, 1),
        step(new_id("t"), rich, 400),  # 200 left: refused, and the next still applies
        step(new_id("t"), rich, 0),
        step(new_id("t"), rich, 200),
    ]

    outcomes = await ledger.debit_batch(steps)

    assert summary(outcomes) == [
        ("debit", 600, False, False),
        InsufficientFunds,
        ("debit", 200, False, False),
        AccountNotOpen,
        AccountNotOpen,
        AccountNotFound,
        CurrencyMismatch,
        InsufficientFunds,
        InvalidAmount,
        ("debit", 0, False, False),
    ]
    assert [(a.balance, a.version) for a in [await ledger.get_account(rich)]] == [(0, 5)]
    for untouched, balance in ((poor, 10), (frozen, 500), (euros, 500)):
        assert (await ledger.get_account(untouched)).balance == balance
    # the entries keep the order of the balances they left
    assert await recomputed_balance(ledger, rich) == 0
    assert await entry_count(ledger.router, transfer_id=steps[1].transfer_id) == 0


async def test_same_shard_pairs_and_several_shards_in_one_call(
    ledger: Ledger, new_id: NewId
) -> None:
    shard_of = ledger.router.index_for
    payers = [ids_on_shard(ledger.router, new_id, shard, 2) for shard in range(3)]
    for pair in payers:
        for account in pair:
            await open_funded(ledger, account, 100)
    transfers = [new_id("t") for _ in payers]
    debits = [step(t, pair[0], 30) for t, pair in zip(transfers, payers, strict=True)]
    credits = [
        BatchStep(t, pair[1], 30, "USD", debit.fingerprint)
        for t, pair, debit in zip(transfers, payers, debits, strict=True)
    ]
    assert {shard_of(s.account_id) for s in debits} == {0, 1, 2}

    debited = await ledger.debit_batch(debits)
    credited = await ledger.credit_batch(credits)

    assert summary(debited) == [("debit", 70, False, False)] * 3
    assert summary(credited) == [("credit", 130, False, False)] * 3
    for pair in payers:
        assert [(await ledger.get_account(a)).balance for a in pair] == [70, 130]


async def test_fence_then_refund_settles_what_was_not_credited(
    ledger: Ledger, new_id: NewId
) -> None:
    source = await open_funded(ledger, new_id("acc"), 100)
    target = await open_funded(ledger, new_id("acc"), 0)
    landed, fenced, never_debited = (new_id("t") for _ in range(3))
    debits = [step(landed, source, 10), step(fenced, source, 20)]
    fingerprints = {s.transfer_id: s.fingerprint for s in debits}
    fingerprints[never_debited] = step(never_debited, source, 5).fingerprint

    def on(account: str, transfer_id: str, amount: int) -> BatchStep:
        return BatchStep(transfer_id, account, amount, "USD", fingerprints[transfer_id])

    await ledger.debit_batch(debits)
    await ledger.credit_batch([on(target, landed, 10)])
    fences = await ledger.fence_credit_batch(
        [on(target, landed, 10), on(target, fenced, 20), on(target, never_debited, 5)]
    )
    refunds = await ledger.refund_batch([on(source, fenced, 20), on(source, never_debited, 5)])
    late_credit = await ledger.credit_batch([on(target, fenced, 20)])
    late_debit = await ledger.debit_batch([on(source, never_debited, 5)])

    assert summary(fences) == [
        ("credit", 10, False, True),
        ("credit", 10, True, False),  # a marker carries the balance it left unchanged
        ("credit", 10, True, False),
    ]
    assert summary(refunds) == [("refund", 90, False, False), ("refund", 90, True, False)]
    assert summary(late_credit) == [AlreadyCompensated]
    assert summary(late_debit) == [AlreadyCompensated]
    assert (await ledger.get_account(source)).balance == 90
    assert (await ledger.get_account(target)).balance == 10


async def test_another_request_for_a_transfer_id_is_refused_per_step(
    ledger: Ledger, new_id: NewId
) -> None:
    source = await open_funded(ledger, new_id("acc"), 100)
    taken, fresh = new_id("t"), new_id("t")
    first = step(taken, source, 10)
    await ledger.debit_batch([first])
    other = BatchStep(taken, source, 10, "USD", fingerprint_of("transfer", "someone else"))

    outcomes = await ledger.debit_batch([other, step(fresh, source, 10), first])

    assert summary(outcomes) == [
        IdempotencyConflict,
        ("debit", 80, False, False),
        ("debit", 90, False, True),
    ]
    assert (await ledger.get_account(source)).balance == 80


async def test_a_transfer_id_twice_in_one_batch_applies_once(ledger: Ledger, new_id: NewId) -> None:
    source = await open_funded(ledger, new_id("acc"), 100)
    same = step(new_id("t"), source, 10)

    outcomes = await ledger.debit_batch([same, same])

    assert summary(outcomes) == [("debit", 90, False, False), ("debit", 90, False, True)]
    assert (await ledger.get_account(source)).balance == 90


async def test_claims_in_batches_own_an_id_for_its_first_request(
    ledger: Ledger, new_id: NewId
) -> None:
    owned, fresh, twice = new_id("t"), new_id("t"), new_id("t")
    await ledger.claim(owned, "mine")

    outcomes = await ledger.claim_batch(
        [(owned, "mine"), (owned, "theirs"), (fresh, "new"), (twice, "a"), (twice, "b"), ("", "x")]
    )
    again = await ledger.claim_batch([(fresh, "new"), (twice, "a"), (twice, "b")])

    assert [o.code if o else None for o in outcomes] == [
        None,
        "IdempotencyConflict",
        None,
        None,
        "IdempotencyConflict",
        "InvalidTransferId",
    ]
    assert [type(o) if o else None for o in again] == [None, None, IdempotencyConflict]


async def test_an_empty_batch_touches_nothing(ledger: Ledger) -> None:
    assert await ledger.debit_batch([]) == []
    assert await ledger.claim_batch([]) == []


async def test_entries_of_a_batch_are_those_a_single_step_writes(
    ledger: Ledger, new_id: NewId
) -> None:
    source = await open_funded(ledger, new_id("acc"), 100)
    batched = step(new_id("t"), source, 10)
    single = step(new_id("t"), source, 10)

    await ledger.debit_batch([batched])
    await ledger.debit(single.transfer_id, source, 10, "USD", single.fingerprint)

    kinds = await entry_kinds(ledger.router, source)
    assert kinds[-2:] == [
        (batched.transfer_id, "debit", 10, False),
        (single.transfer_id, "debit", 10, False),
    ]
    # the single path replays the batch's entry, and the batch the single step's
    replayed = await ledger.debit(batched.transfer_id, source, 10, "USD", batched.fingerprint)
    again = await ledger.debit_batch([single])
    assert (replayed.replayed, replayed.balance_after) == (True, 90)
    assert summary(again) == [("debit", 80, False, True)]


async def test_a_batch_sweeps_a_lapsed_hold_once_and_debits_against_what_it_frees(
    ledger: Ledger, new_id: NewId
) -> None:
    held = await open_funded(ledger, new_id("acc"), 100)
    plain = await open_funded(ledger, new_id("acc"), 100)
    lapsed, live = new_id("t"), new_id("t")
    await ledger.hold(lapsed, held, 80, ttl_s=1)
    await asyncio.sleep(1.2)  # a little past the 1 s time-to-live
    await ledger.hold(live, held, 5, ttl_s=60)

    outcomes = await ledger.debit_batch(
        [
            step(new_id("t"), held, 60),
            step(new_id("t"), plain, 7),
            step(new_id("t"), held, 30),
            step(new_id("t"), held, 6),
        ]
    )

    # 95 available once the lapsed 80 is released: 60 and 30 fit, then 5 is left, not 6
    assert summary(outcomes) == [
        ("debit", 40, False, False),
        ("debit", 93, False, False),
        ("debit", 10, False, False),
        InsufficientFunds,
    ]
    view = await ledger.get_account(held)
    assert (view.balance, view.held, view.available) == (10, 5, 5)
    swept = await ledger.get_hold(lapsed, held)
    assert swept is not None
    assert swept.status == "released"
    assert await entry_count(ledger.router, transfer_id=lapsed) == 2  # its hold, one release
    report = await run_audit(ledger.router)
    assert held not in report.account_mismatches
