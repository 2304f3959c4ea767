"""`transfers dev --demo`: sample accounts on every shard and one transfer of each kind.

Every id is fixed, so a restart on the same data dir reuses the accounts and gets the same
transfers back instead of moving money again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from itertools import count

from shards.ledger import Ledger
from shards.money import format_amount
from shards.router import ShardRouter, shard_index
from shards.schema import AccountStatus
from transfers.client import TransfersClient
from transfers.settings import Settings
from workflows.models import TransferRequest, TransferStatus

PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
USD_DEPOSIT = 1_000_00
OTHER_CURRENCIES = {"ivan-eur": ("EUR", 500_00), "judy-jpy": ("JPY", 100_000)}
CLOSED = "closed-usd"


@dataclass(frozen=True)
class DemoTransfer:
    """One sample transfer and what became of it."""

    transfer_id: str
    story: str
    request: TransferRequest
    status: TransferStatus
    ui_link: str

    @property
    def amount(self) -> str:
        """The amount as a decimal string in major units, e.g. '25.00'."""
        return format_amount(self.request.amount, self.request.currency)


def usd_people(shard_count: int) -> list[str]:
    """The people, plus extra users until every shard has one and two share a shard."""
    people = list(PEOPLE)
    extras = (f"user-{number}" for number in count(1))
    while not _covers(people, shard_count):
        people.append(next(extras))
    return people


def _covers(people: list[str], shard_count: int) -> bool:
    shards = [shard_index(person, shard_count) for person in people]
    return set(shards) == set(range(shard_count)) and len(set(shards)) < len(shards)


async def open_accounts(ledger: Ledger, people: list[str]) -> None:
    for person in people:
        await ledger.open_account(person, "USD")
        await ledger.deposit(f"demo-deposit-{person}", person, USD_DEPOSIT, "USD")
    for account_id, (currency, amount) in OTHER_CURRENCIES.items():
        await ledger.open_account(account_id, currency)
        await ledger.deposit(f"demo-deposit-{account_id}", account_id, amount, currency)
    await ledger.open_account(CLOSED, "USD")
    await ledger.set_status(CLOSED, AccountStatus.CLOSED)


def sample_transfers(people: list[str], shard_count: int) -> dict[str, tuple[str, str, str, int]]:
    """transfer id -> (story, source, target, amount in cents), picked by where accounts live."""

    def shard(account_id: str) -> int:
        return shard_index(account_id, shard_count)

    first, *others = people
    remote = next((person for person in others if shard(person) != shard(first)), others[0])
    pair = next((a, b) for a in people for b in people if a < b and shard(a) == shard(b))
    # A credit refused on another shard is compensated; on the same shard nothing moves at all.
    payer = next((person for person in people if shard(person) != shard(CLOSED)), first)
    return {
        "demo-completed": ("cross-shard, completed", first, remote, 25_00),
        "demo-same-shard": ("both on one shard: one local transaction", *pair, 10_00),
        "demo-refused": ("insufficient funds: refused, nothing moved", others[0], first, 10**8),
        "demo-compensated": ("target closed: debit refunded", payer, CLOSED, 5_00),
    }


async def run_demo(settings: Settings) -> list[DemoTransfer]:
    """Open the sample accounts, submit the sample transfers and wait for their final states."""
    dsns = settings.dsn_list()
    router = ShardRouter.from_dsns(dsns)
    try:
        people = usd_people(len(dsns))
        await open_accounts(Ledger(router, settings.lock_strategy), people)
    finally:
        await router.dispose()
    client = await TransfersClient.connect(settings)
    samples = sample_transfers(people, len(dsns))
    requests = {
        transfer_id: TransferRequest(
            transfer_id=transfer_id,
            source_account_id=source,
            target_account_id=target,
            amount=amount,
            currency="USD",
            memo=f"demo: {story}",
        )
        for transfer_id, (story, source, target, amount) in samples.items()
    }
    outcomes = await asyncio.gather(*(client.submit(request) for request in requests.values()))
    return [
        DemoTransfer(
            transfer_id=outcome.transfer_id,
            story=samples[outcome.transfer_id][0],
            request=requests[outcome.transfer_id],
            status=outcome.status,
            ui_link=client.ui_link(outcome.transfer_id),
        )
        for outcome in outcomes
    ]
