"""The accounts of a chaos run: funded ones in several currencies on every shard, and a frozen and
a closed one per shard, with every deposit and withdrawal remembered for the conservation check."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from itertools import count

from shards.ledger import Ledger
from shards.router import shard_index
from shards.schema import AccountStatus

# Minor units: JPY has no decimals, so its amounts are a hundred times larger in number.
DEPOSIT_RANGE = {
    "USD": (1_000_00, 5_000_00),
    "EUR": (1_000_00, 5_000_00),
    "JPY": (100_000, 500_000),
}
CURRENCIES = tuple(DEPOSIT_RANGE)
ODD_CURRENCY = "USD"  # the currency of the frozen and closed accounts
OPEN_PER_SHARD = 3  # per currency: a pair for same-shard transfers, and a third for contention
FROZEN_DEPOSIT = 100_00


@dataclass
class AccountBook:
    """Who holds what before the traffic starts; what the ledger must still add up to after it."""

    shard_count: int
    open: dict[str, list[str]] = field(default_factory=dict)  # currency -> open account ids
    frozen: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    deposited: Counter[str] = field(default_factory=Counter)  # currency -> minor units
    withdrawn: Counter[str] = field(default_factory=Counter)
    opening: Counter[str] = field(default_factory=Counter)  # account -> balance before traffic
    flow_ids: set[str] = field(default_factory=set)  # entry ids of our deposits and withdrawals

    def shard_of(self, account_id: str) -> int:
        return shard_index(account_id, self.shard_count)

    @property
    def account_count(self) -> int:
        return sum(map(len, self.open.values())) + len(self.frozen) + len(self.closed)


def _ids_on_shards(prefix: str, per_shard: int, shard_count: int) -> list[str]:
    """`per_shard` ids routed to each shard: prefix-0, prefix-1, ... picked by their shard."""
    wanted = Counter(dict.fromkeys(range(shard_count), per_shard))
    candidates = (f"{prefix}-{number}" for number in count())
    found: list[str] = []
    while +wanted:  # the shards still short of ids
        candidate = next(candidates)
        shard = shard_index(candidate, shard_count)
        if wanted[shard] > 0:
            wanted[shard] -= 1
            found.append(candidate)
    return found


async def open_accounts(ledger: Ledger, shard_count: int, rng: random.Random) -> AccountBook:
    """Open and fund every account of the run, withdraw a little from some, freeze and close."""
    book = AccountBook(shard_count)
    for currency, (low, high) in DEPOSIT_RANGE.items():
        book.open[currency] = _ids_on_shards(currency.lower(), OPEN_PER_SHARD, shard_count)
        await asyncio.gather(
            *(
                _open_funded(ledger, book, account, currency, rng.randint(low, high))
                for account in book.open[currency]
            )
        )
        for account in book.open[currency][::OPEN_PER_SHARD]:
            await _move(ledger, book, f"wd-{account}", account, currency, low // 10, withdraw=True)
    book.frozen = _ids_on_shards("frozen", 1, shard_count)
    book.closed = _ids_on_shards("closed", 1, shard_count)
    for account in book.frozen:
        await _open_funded(ledger, book, account, ODD_CURRENCY, FROZEN_DEPOSIT)
        await ledger.set_status(account, AccountStatus.FROZEN)
    for account in book.closed:
        await ledger.open_account(account, ODD_CURRENCY)
        await ledger.set_status(account, AccountStatus.CLOSED)
    return book


async def _open_funded(
    ledger: Ledger, book: AccountBook, account_id: str, currency: str, amount: int
) -> None:
    await ledger.open_account(account_id, currency)
    await _move(ledger, book, f"dep-{account_id}", account_id, currency, amount, withdraw=False)


async def _move(
    ledger: Ledger,
    book: AccountBook,
    entry_id: str,
    account_id: str,
    currency: str,
    amount: int,
    *,
    withdraw: bool,
) -> None:
    if withdraw:
        await ledger.withdraw(entry_id, account_id, amount, currency)
        book.withdrawn[currency] += amount
        book.opening[account_id] -= amount
    else:
        await ledger.deposit(entry_id, account_id, amount, currency)
        book.deposited[currency] += amount
        book.opening[account_id] += amount
    book.flow_ids.add(entry_id)
