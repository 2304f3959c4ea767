"""Malformed amounts, currencies and ids are refused with a specific error and nothing written."""

from __future__ import annotations

import pytest

from shards.errors import (
    AccountNotFound,
    InvalidAccountId,
    InvalidAmount,
    InvalidCurrency,
    InvalidTransferId,
    SameAccount,
)
from shards.ledger import Ledger
from shards.validation import MAX_AMOUNT
from tests.shards.support import NewId, entry_count, ids_on_shard, open_funded

pytestmark = pytest.mark.bad_input

BAD_AMOUNTS = [0, -1, -(2**63), True, False, 1.0, 10.5, MAX_AMOUNT + 1, 2**64, "10", None]
BAD_CURRENCIES = ["usd", "US", "USDX", "", " USD", "U$D", "ÜSD", "US\x00", 840]
BAD_IDS = [
    "",
    "a" * 65,
    "x'; DROP TABLE accounts; --",
    "acc 1",
    "acc/1",
    'acc"1',
    "accé",
    "конто",
    "acc\n1",
    "acc\x00",
    "acc\t",
    "acc-1\n",
    None,
    42,
]
ODD_BUT_ALLOWED = ["a:b-c.d_e", "::--..__", "A" * 64, "0", "merchant:42.eu-west_1"]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
async def test_bad_amounts_are_refused_and_nothing_is_written(
    ledger: Ledger, new_id: NewId, amount: object
) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    before = await ledger.get_account(account)
    entries_before = await entry_count(ledger.router)
    transfer = new_id("t")

    for step in (ledger.debit, ledger.credit, ledger.refund, ledger.deposit, ledger.withdraw):
        with pytest.raises(InvalidAmount):
            await step(transfer, account, amount, "USD")  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        await ledger.hold(transfer, account, amount, ttl_s=60)  # type: ignore[arg-type]

    assert await ledger.get_account(account) == before
    assert await entry_count(ledger.router) == entries_before


async def test_a_balance_that_would_overflow_bigint_is_refused(
    ledger: Ledger, new_id: NewId
) -> None:
    account = await open_funded(ledger, new_id("acc"), MAX_AMOUNT)

    with pytest.raises(InvalidAmount):
        await ledger.credit(new_id("t"), account, 1, "USD")

    assert (await ledger.get_account(account)).balance == MAX_AMOUNT


@pytest.mark.parametrize("currency", BAD_CURRENCIES, ids=repr)
async def test_bad_currencies_are_refused_and_nothing_is_written(
    ledger: Ledger, new_id: NewId, currency: object
) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    before = await ledger.get_account(account)
    entries_before = await entry_count(ledger.router)
    fresh = new_id("acc")

    with pytest.raises(InvalidCurrency):
        await ledger.open_account(fresh, currency)  # type: ignore[arg-type]
    with pytest.raises(InvalidCurrency):
        await ledger.debit(new_id("t"), account, 10, currency)  # type: ignore[arg-type]

    with pytest.raises(AccountNotFound):
        await ledger.get_account(fresh)
    assert await ledger.get_account(account) == before
    assert await entry_count(ledger.router) == entries_before


@pytest.mark.parametrize("account_id", BAD_IDS, ids=repr)
async def test_bad_account_ids_are_refused_and_nothing_is_written(
    ledger: Ledger, new_id: NewId, account_id: object
) -> None:
    funded = await open_funded(ledger, new_id("acc"), 100)
    accounts_before = len(await ledger.list_accounts(limit=1_000_000))
    entries_before = await entry_count(ledger.router)

    with pytest.raises(InvalidAccountId):
        await ledger.open_account(account_id, "USD")  # type: ignore[arg-type]
    with pytest.raises(InvalidAccountId):
        await ledger.deposit(new_id("t"), account_id, 10, "USD")  # type: ignore[arg-type]
    with pytest.raises(InvalidAccountId):
        await ledger.get_account(account_id)  # type: ignore[arg-type]
    with pytest.raises(InvalidAccountId):
        await ledger.transfer_within_shard(new_id("t"), funded, account_id, 10)  # type: ignore[arg-type]

    assert len(await ledger.list_accounts(limit=1_000_000)) == accounts_before
    assert await entry_count(ledger.router) == entries_before
    assert (await ledger.get_account(funded)).balance == 100


@pytest.mark.parametrize("transfer_id", BAD_IDS, ids=repr)
async def test_bad_transfer_ids_are_refused_and_nothing_is_written(
    ledger: Ledger, new_id: NewId, transfer_id: object
) -> None:
    account = await open_funded(ledger, new_id("acc"), 100)
    before = await ledger.get_account(account)

    with pytest.raises(InvalidTransferId):
        await ledger.debit(transfer_id, account, 10, "USD")  # type: ignore[arg-type]

    assert await ledger.get_account(account) == before


@pytest.mark.parametrize("account_id", ODD_BUT_ALLOWED)
async def test_odd_but_allowed_account_ids_round_trip(
    ledger: Ledger, new_id: NewId, account_id: str
) -> None:
    # Fixed ids are shared by both strategies' runs and by reruns: work on top of what is there.
    opened = await ledger.open_account(account_id, "USD")
    await ledger.deposit(new_id("dep"), account_id, 50, "USD")
    debit = await ledger.debit(new_id("t"), account_id, 20, "USD")

    view = await ledger.get_account(account_id)
    assert view.account_id == account_id
    assert debit.account_id == account_id
    assert view.balance == opened.balance + 30
    assert account_id in {listed.account_id for listed in await ledger.list_accounts(1_000_000)}


async def test_transfer_from_an_account_to_itself_is_refused(ledger: Ledger, new_id: NewId) -> None:
    (account,) = ids_on_shard(ledger.router, new_id, shard=0, count=1)
    await open_funded(ledger, account, 100)
    entries_before = await entry_count(ledger.router)

    with pytest.raises(SameAccount):
        await ledger.transfer_within_shard(new_id("t"), account, account, 40, "USD")

    assert (await ledger.get_account(account)).balance == 100
    assert await entry_count(ledger.router) == entries_before
