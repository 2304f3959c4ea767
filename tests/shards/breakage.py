"""Breakage written behind the ledger's back, to show the audit catching it: raw rows in a
currency of their own, deleted afterwards so that the shared shards stay consistent."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update

from shards.audit import INFLOWS
from shards.router import ShardRouter
from shards.schema import accounts, entries, holds


def throwaway_currency() -> str:
    """A fresh code that no real currency (QAR aside, no ISO code starts with Q) nor any other
    test uses, so that this test's totals are its own."""
    while (code := "Q" + "".join(random.choices(string.ascii_uppercase, k=2))) == "QAR":
        pass
    return code


@dataclass(frozen=True)
class Breakage:
    """Accounts in `currency` and entries on them, each written with raw SQL as the ledger
    would write it (balance and entry together) but with none of its checks."""

    router: ShardRouter
    currency: str
    unopened: list[str] = field(default_factory=list)  # accounts named by entries, never opened

    async def account(self, account_id: str, funds: int = 0) -> str:
        """Open `account_id` in the currency, with a deposit of `funds` (none when 0)."""
        async with self.router.shard_for(account_id).begin() as connection:
            await connection.execute(
                insert(accounts).values(account_id=account_id, currency=self.currency)
            )
        if funds:
            await self.entry(f"dep-{account_id}", "deposit", account_id, funds)
        return account_id

    async def entry(self, transfer_id: str, kind: str, account_id: str, amount: int) -> None:
        """An entry of `kind` and its effect on the balance, whatever the other entries say."""
        signed = amount if kind in INFLOWS else -amount
        moved = (
            update(accounts)
            .where(accounts.c.account_id == account_id)
            .values(balance=accounts.c.balance + signed)
            .returning(accounts.c.balance)
        )
        async with self.router.shard_for(account_id).begin() as connection:
            balance = (await connection.execute(moved)).scalar_one()
            row = {"transfer_id": transfer_id, "kind": kind, "account_id": account_id}
            await connection.execute(
                insert(entries).values(**row, amount=amount, balance_after=balance)
            )

    async def unopened_entry(self, transfer_id: str, kind: str, account_id: str) -> None:
        """An entry that moves money on an account that does not exist (no row to change)."""
        self.unopened.append(account_id)
        row = {"transfer_id": transfer_id, "kind": kind, "account_id": account_id}
        async with self.router.shard_for(account_id).begin() as connection:
            await connection.execute(insert(entries).values(**row, amount=1, balance_after=0))

    async def set_held(self, account_id: str, held: int) -> None:
        """Change the account's `held` and nothing else."""
        statement = update(accounts).where(accounts.c.account_id == account_id)
        async with self.router.shard_for(account_id).begin() as connection:
            await connection.execute(statement.values(held=held))

    async def hold(self, transfer_id: str, account_id: str, amount: int) -> None:
        """An active hold, without adding it to the account's `held`."""
        expires_at = datetime.now(UTC) + timedelta(hours=1)
        row = {"transfer_id": transfer_id, "account_id": account_id, "amount": amount}
        async with self.router.shard_for(account_id).begin() as connection:
            await connection.execute(insert(holds).values(**row, expires_at=expires_at))

    async def clean_up(self) -> None:
        """Delete every row of the currency's accounts, on every shard."""
        mine = select(accounts.c.account_id).where(accounts.c.currency == self.currency)
        for shard in self.router.shards:
            async with shard.begin() as connection:
                await connection.execute(
                    delete(entries).where(entries.c.account_id.in_(self.unopened))
                )
                await connection.execute(delete(entries).where(entries.c.account_id.in_(mine)))
                await connection.execute(delete(holds).where(holds.c.account_id.in_(mine)))
                await connection.execute(
                    delete(accounts).where(accounts.c.currency == self.currency)
                )
