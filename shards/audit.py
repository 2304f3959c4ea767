"""Cross-shard audit: is money conserved, and do the entries of every transfer agree?

Per currency: sum(balances) + in flight + written off == sum(deposits) - sum(withdrawals), where
in flight is the money debited (or captured) by a transfer that has been neither credited nor
refunded yet, and written off the money debited by a transfer whose refund an operator settled
outside the ledger (a refund marker beside the debit, see LedgerSaga.resolve_compensation).
Per account: balance == the sum of its entries, held == the sum of its active holds; only a
marker may name an account that does not exist.
Per transfer, across all shards: at most one entry of each kind (a debit and a capture both
take the money: one of them); a credit needs a debit or capture of the same amount and currency;
a transfer is never both credited and refunded; a refund matches what was taken. Money in flight
for a transfer whose workflow has ended is stranded: nothing will ever credit or refund it.

Each shard is read in one REPEATABLE READ snapshot. Shards are read one after the other, so while
transfers are moving a transfer may be seen half-way; run the audit when traffic is quiet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import ARRAY, Text, any_, bindparam, case, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shards.router import ShardRouter
from shards.schema import EntryKind, HoldStatus, accounts, entries, holds

MOVES = (EntryKind.DEBIT, EntryKind.CAPTURE, EntryKind.CREDIT, EntryKind.REFUND)
TAKEN = (EntryKind.DEBIT, EntryKind.CAPTURE)
INFLOWS = (EntryKind.DEPOSIT, EntryKind.CREDIT, EntryKind.REFUND)
OUTFLOWS = (EntryKind.WITHDRAWAL, EntryKind.DEBIT, EntryKind.CAPTURE)
# A refund marker: with a debit, the refund was settled outside the ledger; without, nothing moved.
WRITTEN_OFF = "written_off"


@dataclass
class CurrencyTotals:
    """One currency's sums across all shards, and whether money was conserved."""

    balances: int = 0
    held: int = 0
    in_flight: int = 0
    deposits: int = 0
    withdrawals: int = 0
    # debited, then refunded by an operator outside the ledger (resolve_compensation)
    written_off: int = 0

    @property
    def conserved(self) -> bool:
        """Balances, money in flight and money written off add up to deposits less withdrawals."""
        paid_out = self.balances + self.in_flight + self.written_off
        return paid_out == self.deposits - self.withdrawals


@dataclass
class AuditReport:
    """What `transfers audit` found: per-currency totals and every finding, keyed by its id."""

    currencies: dict[str, CurrencyTotals] = field(default_factory=dict)
    accounts_by_shard: dict[int, int] = field(default_factory=dict)
    transfers_checked: int = 0
    # account id -> what disagrees with its entries or holds
    account_mismatches: dict[str, str] = field(default_factory=dict)
    # transfer id -> why its entries contradict each other
    contradictions: dict[str, str] = field(default_factory=dict)
    # transfer id -> the money it left in flight although its workflow has ended
    stranded: dict[str, str] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        """The count of unbalanced currencies, account mismatches, contradictions, strandings."""
        unbalanced = sum(not totals.conserved for totals in self.currencies.values())
        findings = (self.account_mismatches, self.contradictions, self.stranded)
        return unbalanced + sum(len(found) for found in findings)

    @property
    def ok(self) -> bool:
        """Nothing found: the ledger is consistent."""
        return self.violations == 0


@dataclass(frozen=True)
class _Move:
    kind: str
    account_id: str
    amount: int
    currency: str
    shard: int


# Given the ids of transfers with money in flight: those whose workflow has closed, or that the
# workflow engine does not know. Injected, so that the shard layer knows nothing of Temporal.
WorkflowEnded = Callable[[list[str]], Awaitable[set[str]]]


async def run_audit(
    router: ShardRouter, *, workflow_ended: WorkflowEnded | None = None, quiet: bool = False
) -> AuditReport:
    """Audit every shard. Money in flight is stranded when `workflow_ended` says its transfer
    has ended or, with `quiet` (the caller's statement that no transfer is running), always."""
    report = AuditReport()
    moves = await _read_shards(router, report)
    in_flight: dict[str, _Move] = {}
    for transfer_id, transfer_moves in moves.items():
        problem, taken = _assess(transfer_moves)
        if problem:
            report.contradictions[transfer_id] = problem
        elif taken and any(move.kind == WRITTEN_OFF for move in transfer_moves):
            report.currencies.setdefault(
                taken.currency, CurrencyTotals()
            ).written_off += taken.amount
        elif taken:
            report.currencies.setdefault(taken.currency, CurrencyTotals()).in_flight += taken.amount
            in_flight[transfer_id] = taken
    report.transfers_checked = len(moves)
    report.stranded = await _stranded(router, in_flight, workflow_ended, quiet)
    return report


async def _read_shards(router: ShardRouter, report: AuditReport) -> dict[str, list[_Move]]:
    """Totals and account checks into `report`; every transfer's moves, from all shards."""
    moves: dict[str, list[_Move]] = defaultdict(list)
    for shard in router.shards:
        async with shard.begin(snapshot=True) as connection:
            report.accounts_by_shard[shard.index] = await _add_totals(connection, report)
            report.account_mismatches.update(await _account_mismatches(connection))
            for transfer_id, move in await _moves(connection, shard.index):
                moves[transfer_id].append(move)
    return moves


async def _stranded(
    router: ShardRouter,
    in_flight: dict[str, _Move],
    workflow_ended: WorkflowEnded | None,
    quiet: bool,
) -> dict[str, str]:
    """Transfer id -> the money in flight that nothing will ever credit or refund."""
    if quiet:
        ended, reason = set(in_flight), "and no transfer is running"
    elif workflow_ended and in_flight:
        asked = await workflow_ended(sorted(in_flight)) & set(in_flight)
        # A transfer read half-way may have finished since: only what is in flight once its
        # workflow has ended stays in flight for good.
        ended, reason = await _in_flight_now(router, asked), "and its workflow has ended"
    else:
        return {}
    return {
        transfer_id: _stranded_text(in_flight[transfer_id], reason) for transfer_id in sorted(ended)
    }


async def _in_flight_now(router: ShardRouter, transfer_ids: set[str]) -> set[str]:
    """Those of `transfer_ids` whose money is in flight, read again from every shard."""
    if not transfer_ids:
        return set()
    moves: dict[str, list[_Move]] = defaultdict(list)
    for shard in router.shards:
        async with shard.begin() as connection:
            for transfer_id, move in await _moves(connection, shard.index, transfer_ids):
                moves[transfer_id].append(move)
    return {transfer_id for transfer_id, found in moves.items() if _assess(found)[1]}


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
        .where(~entries.c.marker, entries.c.kind.in_([EntryKind.DEPOSIT, EntryKind.WITHDRAWAL]))
        .group_by(accounts.c.currency, entries.c.kind)
    )
    for currency, kind, amount in await connection.execute(flows):
        totals = report.currencies.setdefault(currency, CurrencyTotals())
        if kind == EntryKind.DEPOSIT:
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
    mismatches = {
        account_id: f"balance {balance} vs entries {entries_net}; held {held} vs holds {holds_sum}"
        for account_id, balance, entries_net, held, holds_sum in await connection.execute(query)
    }
    # Only markers may name an account not opened (yet): no foreign key says so (migration 0006).
    unopened = (
        select(entries.c.account_id, func.count())
        .where(~entries.c.marker, ~exists().where(accounts.c.account_id == entries.c.account_id))
        .group_by(entries.c.account_id)
    )
    for account_id, count in await connection.execute(unopened):
        mismatches[account_id] = f"{count} entries move money on an account that does not exist"
    return mismatches


async def _moves(
    connection: AsyncConnection, shard: int, transfer_ids: Iterable[str] | None = None
) -> list[tuple[str, _Move]]:
    """The shard's moves, of every transfer or of some: no markers (they move no money) but
    refund markers, `WRITTEN_OFF` (a debit's refund marker says an operator settled it)."""
    kind = case((entries.c.marker, literal(WRITTEN_OFF)), else_=entries.c.kind)
    query = (
        select(entries.c.transfer_id, kind, entries.c.account_id, entries.c.amount)
        .add_columns(accounts.c.currency)
        .join(accounts, accounts.c.account_id == entries.c.account_id)
        .where(
            (~entries.c.marker & entries.c.kind.in_(MOVES))
            | (entries.c.marker & (entries.c.kind == EntryKind.REFUND))
        )
    )
    if transfer_ids is not None:  # one array parameter, however many ids
        wanted = bindparam("transfer_ids", sorted(transfer_ids), type_=ARRAY(Text))
        query = query.where(entries.c.transfer_id == any_(wanted))
    return [
        (transfer_id, _Move(kind, account_id, amount, currency, shard))
        for transfer_id, kind, account_id, amount, currency in await connection.execute(query)
    ]


def _assess(moves: list[_Move]) -> tuple[str | None, _Move | None]:
    """A transfer's contradiction if any; else what it took and has not paid out yet, if any."""
    moves = [move for move in moves if move.kind != WRITTEN_OFF]  # see run_audit
    if not moves:  # markers only: nothing moved
        return None, None
    repeated = _repeated(moves)
    if repeated:
        return repeated, None
    by_kind = {move.kind: move for move in moves}
    taken = by_kind.get(EntryKind.DEBIT) or by_kind.get(EntryKind.CAPTURE)
    credit = by_kind.get(EntryKind.CREDIT)
    refund = by_kind.get(EntryKind.REFUND)
    problem = _contradiction(taken, credit, refund)
    if problem or credit or refund:
        return problem, None
    return None, taken


def _repeated(moves: list[_Move]) -> str | None:
    """More than one entry of a kind, e.g. a debit on each of two shards. A debit and a capture
    both take the money, so they count as one kind."""
    for kinds in (TAKEN, (EntryKind.CREDIT,), (EntryKind.REFUND,)):
        same = [move for move in moves if move.kind in kinds]
        if len(same) > 1:
            where = ", ".join(
                f"{move.kind} of {move.amount} on {move.account_id} (shard {move.shard})"
                for move in sorted(same, key=lambda move: (move.shard, move.kind))
            )
            return f"{len(same)} {'/'.join(kinds)} entries: {where}"
    return None


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


def _stranded_text(taken: _Move, reason: str) -> str:
    money = f"{taken.kind} of {taken.amount} {taken.currency} minor units from {taken.account_id}"
    return f"{money}, neither credited nor refunded, {reason}"
