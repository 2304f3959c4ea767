"""Statements: every entry of an account exactly once across pages, newest first, each
`balance_after` what the entries before it add up to."""

from __future__ import annotations

import asyncio
import base64

import pytest
from sqlalchemy import text

from shards.errors import AccountNotFound, InvalidCursor, InvalidInput
from shards.ledger import Ledger
from shards.router import ShardRouter
from shards.statements import encode_cursor
from shards.validation import MAX_PAGE
from tests.shards.support import NewId, entry_kinds, ids_on_shard, open_funded
from tests.support.statements import SIGN, recomputed_balance, statement_pages


async def _busy_account(ledger: Ledger, new_id: NewId) -> str:
    """An account with every kind of entry, markers, and steps that raced for its row."""
    account_id, other_id = ids_on_shard(ledger.router, new_id, shard=1, count=2)
    account = await open_funded(ledger, account_id, 10_000)
    other = await open_funded(ledger, other_id, 0)
    # Whole transfers with `other` (the suite's shards are shared: an audit later must balance).
    paid_out, paid_in = new_id("t"), new_id("t")
    await ledger.debit(paid_out, account, 700)
    await ledger.credit(paid_out, other, 700)
    await ledger.debit(paid_in, other, 250)
    await ledger.credit(paid_in, account, 250)
    refunded = new_id("t")
    await ledger.debit(refunded, account, 300)
    await ledger.refund(refunded, account, 300)
    await ledger.refund(new_id("t"), account, 50)  # never debited: a marker
    captured = new_id("t")
    await ledger.hold(captured, account, 400, ttl_s=60)
    await ledger.post(captured, account, 150)  # the other 250 released
    released = new_id("t")
    await ledger.hold(released, account, 90, ttl_s=60)
    await ledger.void(released, account, 90)
    await ledger.transfer_within_shard(new_id("t"), account, other, 10)
    racing = [ledger.deposit(new_id("dep"), account, 1 + n) for n in range(12)]
    racing += [ledger.withdraw(new_id("wd"), account, 7) for _ in range(12)]
    await asyncio.gather(*racing)
    return account


async def test_pages_return_every_entry_once_newest_first_with_a_consistent_balance(
    ledger: Ledger, new_id: NewId
) -> None:
    account = await _busy_account(ledger, new_id)

    pages = await statement_pages(ledger, account, limit=4)
    statement = [entry for page in pages for entry in page]

    assert all(len(page) == 4 for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= 4
    oldest_first = statement[::-1]
    assert [(e.transfer_id, e.kind, e.amount, e.marker) for e in oldest_first] == await entry_kinds(
        ledger.router, account
    )
    ids = [entry.entry_id for entry in statement]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)
    balance = await recomputed_balance(ledger, account, limit=4)
    assert balance == (await ledger.get_account(account)).balance
    assert {entry.kind for entry in statement} == set(SIGN)
    assert any(entry.marker for entry in statement)


async def test_entries_written_between_pages_do_not_shift_the_next_page(
    ledger: Ledger, new_id: NewId
) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    for _ in range(4):
        await ledger.deposit(new_id("dep"), account, 5)

    first = await ledger.statement(account, limit=2)
    await ledger.deposit(new_id("dep"), account, 5)  # newer than anything on the first page
    second = await ledger.statement(account, limit=2, before=first.next_cursor)
    third = await ledger.statement(account, limit=2, before=second.next_cursor)

    assert [e.balance_after for e in first.entries] == [120, 115]
    assert [e.balance_after for e in second.entries] == [110, 105]
    assert [e.balance_after for e in third.entries] == [100]
    assert third.next_cursor is None
    assert (first.currency, first.account_id) == ("USD", account)


async def test_an_account_without_entries_has_one_empty_page(ledger: Ledger, new_id: NewId) -> None:
    account = await open_funded(ledger, new_id("acc"), 0)

    page = await ledger.statement(account)

    assert (page.entries, page.next_cursor) == ((), None)
    with pytest.raises(AccountNotFound, match="does not exist"):
        await ledger.statement(new_id("acc"))


def _forged(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        encode_cursor(12)[:-2],  # cut short
        encode_cursor(12) + "!",  # not in the alphabet (plain base64 decoding skips it)
        _forged("entries-before:0"),
        _forged("entries-before:-3"),
        _forged("entries-before:12.5"),
        _forged("entries-before:١٢"),  # non-ASCII digits int() would accept
        _forged(f"entries-before:{2**63}"),
        _forged("accounts-before:12"),
        "é" * 8,
        "A" * 65,
    ],
)
async def test_a_cursor_no_page_returned_is_refused(
    router: ShardRouter, new_id: NewId, cursor: str
) -> None:
    ledger = Ledger(router)
    account = await open_funded(ledger, new_id("acc"), 0)

    with pytest.raises(InvalidCursor, match="is not one that a statement page returned"):
        await ledger.statement(account, before=cursor)


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE + 1])
async def test_a_limit_out_of_range_is_refused(router: ShardRouter, limit: int) -> None:
    with pytest.raises(InvalidInput, match=f"limit {limit} must be an integer from 1 to"):
        await Ledger(router).statement("acc-1", limit=limit)


async def test_a_page_reads_the_index_in_order_without_sorting(
    router: ShardRouter, new_id: NewId
) -> None:
    ledger = Ledger(router)
    account = await open_funded(ledger, new_id("acc"), 10)
    query = text(
        "EXPLAIN SELECT entry_id FROM entries WHERE account_id = :account AND entry_id < :before "
        "ORDER BY entry_id DESC LIMIT 101"
    )
    # A cursor past every entry: with a small one (99), walking the primary key backwards from it
    # is a cheap plan too, and the planner took it once the shared shard held many entries. With
    # few rows per account a bitmap scan and a sort cost about the same: only plans that could
    # use the index's order are left to it, and a Sort means the index cannot give that order.
    async with router.shard_for(account).begin() as connection:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            await connection.execute(text(f"SET LOCAL {setting} = off"))
        rows = await connection.execute(query, {"account": account, "before": 2**62})
        plan = "\n".join(row[0] for row in rows)

    assert "ix_entries_account_id_entry_id" in plan, plan
    assert "Sort" not in plan, plan
