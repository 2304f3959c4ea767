"""What chaos traffic is made of: the kinds of transfer, how often each comes alone and in a batch,
the final states each may end in, and the requests drawn for them from the run's accounts."""

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
    # only in batches: refusals a batch must keep to the transfer that earns them
    UNKNOWN_SOURCE = "unknown_source"  # debit refused
    UNKNOWN_TARGET = "unknown_target"  # credit refused: compensated
    CURRENCY_MISMATCH = "currency_mismatch"  # a target of another currency: compensated

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
# A batch's members: no pending kinds (a batch holds plain transfers), the refusals besides. Its
# same-shard pairs and the accounts it names twice (a few dozen accounts for up to 50 transfers)
# come by themselves.
BATCH_WEIGHTS = {
    TransferKind.CROSS_SHARD: 40,
    TransferKind.SAME_SHARD: 24,
    TransferKind.OVERDRAFT: 6,
    TransferKind.TO_CLOSED: 5,
    TransferKind.TO_FROZEN: 5,
    TransferKind.FROM_FROZEN: 4,
    TransferKind.UNKNOWN_SOURCE: 4,
    TransferKind.UNKNOWN_TARGET: 6,
    TransferKind.CURRENCY_MISMATCH: 6,
}
BATCH_SIZES = (5, 50)
NAMED_BATCH_ODDS = 0.5  # the others get the id derived from their content
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
    TransferKind.UNKNOWN_SOURCE: {TransferStatus.FAILED},
    TransferKind.UNKNOWN_TARGET: {TransferStatus.COMPENSATED, TransferStatus.FAILED},
    TransferKind.CURRENCY_MISMATCH: {TransferStatus.COMPENSATED, TransferStatus.FAILED},
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
# A batch debits and credits a same-shard transfer in two steps: cancelled or with its target
# frozen between them, it is refunded.
_BATCH_DISTURBED_EXTRA = {TransferKind.SAME_SHARD: {TransferStatus.COMPENSATED}}


def allowed_statuses(kind: TransferKind, *, disturbed: bool, in_batch: bool) -> set[TransferStatus]:
    """The final states a transfer of `kind` may end in."""
    if not disturbed:
        return ALLOWED_STATUSES[kind]
    return DISTURBED_STATUSES[kind] | (
        _BATCH_DISTURBED_EXTRA.get(kind, set()) if in_batch else set()
    )


@dataclass(frozen=True)
class PlannedTransfer:
    """A request and what the client will do with it; `post_amount` for a partial post."""

    kind: TransferKind
    request: TransferRequest
    post_amount: int | None = None


@dataclass(frozen=True)
class PlannedBatch:
    """A batch's transfers, and the id it is submitted with (None: derived from its content)."""

    batch_id: str | None
    transfers: tuple[PlannedTransfer, ...]


class TransferMix:
    """Draws transfers of every kind, in proportion to WEIGHTS, between the book's accounts;
    and batches of BATCH_SIZES transfers in proportion to BATCH_WEIGHTS."""

    def __init__(self, book: AccountBook, rng: random.Random, id_prefix: str) -> None:
        self.book = book
        self.rng = rng
        self.id_prefix = id_prefix
        self.numbers = count(1)
        self.batch_numbers = count(1)

    def next(self) -> PlannedTransfer:
        return self._planned(_draw(self.rng, WEIGHTS))

    def next_batch(self) -> PlannedBatch:
        size = self.rng.randint(*BATCH_SIZES)
        named = self.rng.random() < NAMED_BATCH_ODDS
        batch_id = f"{self.id_prefix}-batch-{next(self.batch_numbers):04d}" if named else None
        members = (self._planned(_draw(self.rng, BATCH_WEIGHTS)) for _ in range(size))
        return PlannedBatch(batch_id, tuple(members))

    def _planned(self, kind: TransferKind) -> PlannedTransfer:
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
        if kind == TransferKind.UNKNOWN_SOURCE:
            return self._unknown(), choice(book.open[currency])
        source = choice(book.open[currency])
        if kind == TransferKind.UNKNOWN_TARGET:
            return source, self._unknown()
        if kind == TransferKind.CURRENCY_MISMATCH:
            other = choice([c for c in CURRENCIES if c != currency])
            return source, choice(book.open[other])
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

    def _unknown(self) -> str:
        """An account id never opened (the book's ids are `usd-0`, `frozen-1` ...)."""
        return f"nobody-{self.rng.randrange(1_000)}"

    def _amount(self, kind: TransferKind, currency: str) -> int:
        if kind == TransferKind.OVERDRAFT:
            return self.book.deposited[currency] + 1
        low, _ = DEPOSIT_RANGE[currency]
        return self.rng.randint(2, low // 50)


def _draw(rng: random.Random, weights: dict[TransferKind, int]) -> TransferKind:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


_ODD_KINDS = {TransferKind.TO_CLOSED, TransferKind.TO_FROZEN, TransferKind.FROM_FROZEN}
