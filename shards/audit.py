"""Cross-shard audit: is money conserved, and do the entries of every transfer agree?

Per currency: sum(balances) + in flight == sum(deposits) - sum(withdrawals), where in flight is
the money debited (or captured) by a transfer that has been neither credited nor refunded yet.
Per account: balance == the sum of its entries, held == the sum of its active holds.
Per transfer: a credit needs a debit or capture of the same amount and currency; a transfer is
never both credited and refunded; a refund matches what was taken.

Each shard is read in one REPEATABLE READ snapshot. Shards are read one after the other, so while
transfers are moving a transfer may be seen half-way; run the audit when traffic is quiet.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shards.router import ShardRouter
from shards.schema import EntryKind, HoldStatus, accounts, entries, holds

K = EntryKind
MOVES = (K.DEBIT, K.CAPTURE, K.CREDIT, K.REFUND)
INFLOWS = (K.DEPOSIT, K.CREDIT, K.REFUND)
OUTFLOWS = (K.WITHDRAWAL, K.DEBIT, K.CAPTURE)


@dataclass
class CurrencyTotals:
    balances: int = 0
    held: int = 0
    in_flight: int = 0
    deposits: int = 0
    withdrawals: int = 0

    @property
    def conserved(self) -> bool:
        return self.balances + self.in_flight == self.deposits - self.withdrawals


@dataclass
class AuditReport:
    currencies: dict[str, CurrencyTotals] = field(default_factory=dict)
    accounts_by_shard: dict[int, int] = field(default_factory=dict)
    transfers_checked: int = 0
    # account id -> what disagrees with its entries or holds
    account_mismatches: dict[str, str] = field(default_factory=dict)
    # transfer id -> why its entries contradict each other
    contradictions: dict[str, str] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        unbalanced = sum(not totals.conserved for totals in self.currencies.values())
        return unbalanced + len(self.account_mismatches) + len(self.contradictions)

    @property
    def ok(self) -> bool:
        return self.violations == 0


@dataclass(frozen=True)
class _Move:
    kind: str
    account_id: str
    amount: int
    currency: str


async def run_audit(router: ShardRouter) -> AuditReport:
    report = AuditReport()
    moves: dict[str, list[_Move]] = defaultdict(list)
    for shard in router.shards:
        async with shard.begin(snapshot=True) as connection:
            report.accounts_by_shard[shard.index] = await _add_totals(connection, report)
            report.account_mismatches.update(await _account_mismatches(connection))
            for transfer_id, move in await _moves(connection):
                moves[transfer_id].append(move)
    for transfer_id, transfer_moves in moves.items():
        _check_transfer(report, transfer_id, transfer_moves)
    report.transfers_checked = len(moves)
    return report


async def _add_totals(connection: AsyncConnection, report: AuditReport) -> int:
    balances = select(
        accounts.c.currency,
        func.sum(accounts.c.balance),
        func.sum(accounts.c.held),
        func.count(),
    ).group_by(accounts.c.currency)
    count = 0
    for currency, balance, held, number in await connection.execute(balances):
        totals = report.currencies.setdefault(currency, CurrencyTotals())
        totals.balances += int(balance)
        totals.held += int(held)
        count += number
    flows = (
        select(accounts.c.currency, entries.c.kind, func.sum(entries.c.amount))
        .join(accounts, accounts.c.account_id == entries.c.account_id)
        .where(~entries.c.marker, entries.c.kind.in_([K.DEPOSIT, K.WITHDRAWAL]))
        .group_by(accounts.c.currency, entries.c.kind)
    )
    for currency, kind, amount in await connection.execute(flows):
        totals = report.currencies.setdefault(currency, CurrencyTotals())
        if kind == K.DEPOSIT:
            totals.deposits += int(amount)
        else:
            totals.withdrawals += int(amount)
    return count


async def _account_mismatches(connection: AsyncConnection) -> dict[str, str]:
    signed = case(
        (entries.c.kind.in_(INFLOWS), entries.c.amount),
        (entries.c.kind.in_(OUTFLOWS), -entries.c.amount),
        else_=literal(0),
    )
    net = (
        select(entries.c.account_id, func.sum(signed).label("net"))
        .where(~entries.c.marker)
        .group_by(entries.c.account_id)
        .subquery()
    )
    active = (
        select(holds.c.account_id, func.sum(holds.c.amount).label("held"))
        .where(holds.c.status == HoldStatus.ACTIVE)
        .group_by(holds.c.account_id)
        .subquery()
    )
    net_amount = func.coalesce(net.c.net, 0)
    held_amount = func.coalesce(active.c.held, 0)
    query = (
        select(accounts.c.account_id, accounts.c.balance, net_amount, accounts.c.held, held_amount)
        .outerjoin(net, net.c.account_id == accounts.c.account_id)
        .outerjoin(active, active.c.account_id == accounts.c.account_id)
        .where((accounts.c.balance != net_amount) | (accounts.c.held != held_amount))
    )
    return {
        account_id: f"balance {balance} vs entries {entries_net}; held {held} vs holds {holds_sum}"
        for account_id, balance, entries_net, held, holds_sum in await connection.execute(query)
    }


async def _moves(connection: AsyncConnection) -> list[tuple[str, _Move]]:
    query = (
        select(
            entries.c.transfer_id,
            entries.c.kind,
            entries.c.account_id,
            entries.c.amount,
            accounts.c.currency,
        )
        .join(accounts, accounts.c.account_id == entries.c.account_id)
        .where(~entries.c.marker, entries.c.kind.in_(MOVES))
    )
    rows = await connection.execute(query)
    return [(transfer_id, _Move(*rest)) for transfer_id, *rest in rows]


def _check_transfer(report: AuditReport, transfer_id: str, moves: list[_Move]) -> None:
    by_kind = {move.kind: move for move in moves}
    taken = by_kind.get(K.DEBIT) or by_kind.get(K.CAPTURE)
    credit = by_kind.get(K.CREDIT)
    refund = by_kind.get(K.REFUND)
    problem = _contradiction(taken, credit, refund)
    if problem:
        report.contradictions[transfer_id] = problem
    elif taken and not credit and not refund:
        report.currencies.setdefault(taken.currency, CurrencyTotals()).in_flight += taken.amount


def _contradiction(taken: _Move | None, credit: _Move | None, refund: _Move | None) -> str | None:
    if credit and refund:
        return "both credited and refunded"
    if taken is None:
        return "credited without a debit" if credit else "refunded without a debit"
    paid = credit or refund
    if paid and paid.amount != taken.amount:
        return f"{paid.kind} of {paid.amount} does not match the {taken.kind} of {taken.amount}"
    if paid and paid.currency != taken.currency:
        return f"{paid.kind} in {paid.currency} but {taken.kind} in {taken.currency}"
    if refund and refund.account_id != taken.account_id:
        return f"refunded to {refund.account_id}, taken from {taken.account_id}"
    return None
