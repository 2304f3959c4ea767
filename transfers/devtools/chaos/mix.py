"""What chaos traffic is made of: the kinds of transfer, how often each comes, the final states
each may end in, and the requests drawn for them from the run's accounts."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from itertools import count

from transfers.devtools.chaos.accounts import CURRENCIES, DEPOSIT_RANGE, ODD_CURRENCY, AccountBook
from workflows.models import PendingTransferRequest, TransferRequest, TransferStatus

HOLD_TIMEOUT_S = 10.0  # a post or void decides in time unless a fault holds it up
LAPSING_HOLD_S = (1.0, 4.0)  # a hold left to expire


class TransferKind(enum.StrEnum):
    CROSS_SHARD = "cross_shard"
    SAME_SHARD = "same_shard"
    OVERDRAFT = "overdraft"  # more than all the currency's deposits: always refused
    TO_CLOSED = "to_closed"  # credit refused: compensated, or refused whole on one shard
    TO_FROZEN = "to_frozen"
    FROM_FROZEN = "from_frozen"  # debit refused
    PENDING_POST = "pending_post"  # hold, then post all of it
    PENDING_PARTIAL = "pending_partial"  # hold, then post a part and release the rest
    PENDING_VOID = "pending_void"
    PENDING_EXPIRE = "pending_expire"  # hold for a few seconds, then let it lapse

    @property
    def pending(self) -> bool:
        return self.value.startswith("pending")


WEIGHTS = {
    TransferKind.CROSS_SHARD: 30,
    TransferKind.SAME_SHARD: 14,
    TransferKind.OVERDRAFT: 8,
    TransferKind.TO_CLOSED: 6,
    TransferKind.TO_FROZEN: 6,
    TransferKind.FROM_FROZEN: 4,
    TransferKind.PENDING_POST: 10,
    TransferKind.PENDING_PARTIAL: 6,
    TransferKind.PENDING_VOID: 8,
    TransferKind.PENDING_EXPIRE: 8,
}
# FAILED is allowed wherever concurrent transfers may have drained the source first; EXPIRED
# wherever a fault may delay a post or void past the hold's timeout.
ALLOWED_STATUSES = {
    TransferKind.CROSS_SHARD: {TransferStatus.COMPLETED, TransferStatus.FAILED},
    TransferKind.SAME_SHARD: {TransferStatus.COMPLETED, TransferStatus.FAILED},
    TransferKind.OVERDRAFT: {TransferStatus.FAILED},
    TransferKind.TO_CLOSED: {TransferStatus.COMPENSATED, TransferStatus.FAILED},
    TransferKind.TO_FROZEN: {TransferStatus.COMPENSATED, TransferStatus.FAILED},
    TransferKind.FROM_FROZEN: {TransferStatus.FAILED},
    TransferKind.PENDING_POST: {
        TransferStatus.COMPLETED,
        TransferStatus.FAILED,
        TransferStatus.EXPIRED,
    },
    TransferKind.PENDING_PARTIAL: {
        TransferStatus.COMPLETED,
        TransferStatus.FAILED,
        TransferStatus.EXPIRED,
    },
    TransferKind.PENDING_VOID: {
        TransferStatus.VOIDED,
        TransferStatus.FAILED,
        TransferStatus.EXPIRED,
    },
    TransferKind.PENDING_EXPIRE: {TransferStatus.EXPIRED, TransferStatus.FAILED},
}
# A transfer cancelled, or with an account frozen for a moment while it ran, may also be refused
# (FAILED), refunded after its debit or capture when its credit is refused (COMPENSATED), or
# voided while held.
_DISTURBED_EXTRA = {
    TransferKind.CROSS_SHARD: {TransferStatus.COMPENSATED},
    TransferKind.PENDING_POST: {TransferStatus.COMPENSATED, TransferStatus.VOIDED},
    TransferKind.PENDING_PARTIAL: {TransferStatus.COMPENSATED, TransferStatus.VOIDED},
    TransferKind.PENDING_EXPIRE: {TransferStatus.VOIDED},
}
DISTURBED_STATUSES = {
    kind: statuses | {TransferStatus.FAILED} | _DISTURBED_EXTRA.get(kind, set())
    for kind, statuses in ALLOWED_STATUSES.items()
}


@dataclass(frozen=True)
class PlannedTransfer:
    """A request and what the client will do with it; `post_amount` for a partial post."""

    kind: TransferKind
    request: TransferRequest
    post_amount: int | None = None


class TransferMix:
    """Draws transfers of every kind, in proportion to WEIGHTS, between the book's accounts."""

    def __init__(self, book: AccountBook, rng: random.Random, id_prefix: str) -> None:
        self.book = book
        self.rng = rng
        self.id_prefix = id_prefix
        self.numbers = count(1)

    def next(self) -> PlannedTransfer:
        kind = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        currency = ODD_CURRENCY if kind in _ODD_KINDS else self.rng.choice(CURRENCIES)
        source, target = self._accounts(kind, currency)
        amount = self._amount(kind, currency)
        request = TransferRequest(
            transfer_id=f"{self.id_prefix}-{next(self.numbers):06d}",
            source_account_id=source,
            target_account_id=target,
            amount=amount,
            currency=currency,
            memo=f"chaos {kind}",
        )
        if not kind.pending:
            return PlannedTransfer(kind, request)
        lapsing = kind == TransferKind.PENDING_EXPIRE
        timeout_s = self.rng.uniform(*LAPSING_HOLD_S) if lapsing else HOLD_TIMEOUT_S
        part = self.rng.randint(1, amount - 1) if kind == TransferKind.PENDING_PARTIAL else None
        pending = PendingTransferRequest(**request.model_dump(), timeout_s=timeout_s)
        return PlannedTransfer(kind, pending, part)

    def _accounts(self, kind: TransferKind, currency: str) -> tuple[str, str]:
        book, choice = self.book, self.rng.choice
        if kind == TransferKind.FROM_FROZEN:
            return choice(book.frozen), choice(book.open[currency])
        source = choice(book.open[currency])
        if kind == TransferKind.TO_CLOSED:
            return source, choice(book.closed)
        if kind == TransferKind.TO_FROZEN:
            return source, choice(book.frozen)
        others = [account for account in book.open[currency] if account != source]
        if kind == TransferKind.CROSS_SHARD:
            others = [a for a in others if book.shard_of(a) != book.shard_of(source)]
        elif kind == TransferKind.SAME_SHARD:
            others = [a for a in others if book.shard_of(a) == book.shard_of(source)]
        return source, choice(others)

    def _amount(self, kind: TransferKind, currency: str) -> int:
        if kind == TransferKind.OVERDRAFT:
            return self.book.deposited[currency] + 1
        low, _ = DEPOSIT_RANGE[currency]
        return self.rng.randint(2, low // 50)


_ODD_KINDS = {TransferKind.TO_CLOSED, TransferKind.TO_FROZEN, TransferKind.FROM_FROZEN}
