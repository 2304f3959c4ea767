"""Wire models of a batch of transfers: `TransferBatchWorkflow`'s input, status and result (the
batched ledger activities' inputs and outputs are one floor below, in `activities.batch_models`).

A batch travels whole through Temporal (its input, its result, each step's result), so its size is
bounded well below Temporal's 2 MB per payload: see MAX_BATCH_SIZE and README "Batches".
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Annotated

from pydantic import Field, model_validator

from activities.models import Identifier, Model
from shards.errors import InvalidInput
from shards.money import format_amount
from workflows.models import TransferOutcome, TransferRequest, TransferStatus

# Measured (README "Batches", tests/workflows/test_batch_payload_limits.py): 1,000 transfers with
# short ids take 160 KB of input, 112 KB per step result, 190 KB of result when every transfer has
# an error; the history of 1,000 is 13 events and ~490 KB, of 2,000 ~980 KB. 2,000 keeps every
# payload under the 512 KB warning with ids of ~20 characters; with every field at its longest
# (64-character ids, 200-character memos: ~510 bytes a transfer) its input is ~1 MB, still half
# the 2 MB limit. 5,000 would pass the warning with short ids (800 KB) and the limit with long ones.
DEFAULT_BATCH_SIZE = 1_000
MAX_BATCH_SIZE = 2_000


class BatchRequest(Model):
    """Input of `TransferBatchWorkflow` (workflow id `batch-{batch_id}`): transfers, each with
    its own id and the same fields and validation as a single transfer, at most MAX_BATCH_SIZE."""

    batch_id: Identifier
    transfers: Annotated[tuple[TransferRequest, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _bounded_and_distinct(self) -> BatchRequest:
        check_batch(self.transfers)
        return self


def check_batch(transfers: Sequence[TransferRequest]) -> None:
    """InvalidInput for an empty batch, one above MAX_BATCH_SIZE, or a transfer id twice."""
    if not transfers:
        raise InvalidInput("a batch needs at least one transfer")
    if len(transfers) > MAX_BATCH_SIZE:
        raise InvalidInput(
            f"a batch holds at most {MAX_BATCH_SIZE:,} transfers; this one has "
            f"{len(transfers):,}: split it (`transfers submit --file` does, by --batch-size)"
        )
    twice = sorted(tid for tid, n in Counter(t.transfer_id for t in transfers).items() if n > 1)
    if twice:
        raise InvalidInput(f"a transfer id twice in one batch: {', '.join(twice[:10])}")


def batch_id_of(transfers: Sequence[TransferRequest]) -> str:
    """The id of a batch given none: a digest of its transfers in order, so that the same
    batch submitted again is the same batch (joined or replayed, never run twice)."""
    digest = hashlib.sha256()
    for transfer in transfers:
        digest.update(transfer.model_dump_json().encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


def batch_workflow_id(batch_id: str) -> str:
    """The workflow id of a batch: one workflow per batch id, ever."""
    return f"batch-{batch_id}"


class BatchOutcome(Model):
    """Result of `TransferBatchWorkflow` and the answer of its `status` query: one outcome per
    transfer, in the batch's order (their entries are in the batch's history, not here: they
    would double its size), and how many transfers have each status."""

    batch_id: str
    transfers: tuple[TransferOutcome, ...]
    counts: dict[str, int]

    @property
    def final(self) -> bool:
        """Whether every transfer of the batch has reached a final status."""
        return all(outcome.status.final for outcome in self.transfers)


# The order counts are shown in: the ends first, then what is still moving.
COUNTED = (
    TransferStatus.COMPLETED,
    TransferStatus.FAILED,
    TransferStatus.COMPENSATED,
    TransferStatus.RUNNING,
    TransferStatus.DEBITED,
    TransferStatus.COMPENSATING,
)


def count_statuses(statuses: Sequence[TransferStatus]) -> dict[str, int]:
    """{status: n}: the three final statuses always, the others while some transfer has them."""
    found = Counter(statuses)
    return {status.value: found[status] for status in COUNTED if status.final or found[status]}


def one_currency_total(transfers: Sequence[TransferRequest]) -> tuple[int, str] | None:
    """The batch's total and currency, as its `Amount` and `Currency` search attributes: None
    when it moves several currencies or the total exceeds a 64-bit Int attribute."""
    currencies = {transfer.currency for transfer in transfers}
    total = sum(transfer.amount for transfer in transfers)
    if len(currencies) != 1 or total >= 2**63:
        return None
    return total, currencies.pop()


def totals_line(transfers: Sequence[TransferRequest]) -> str:
    """'1,000 transfers, 12,345.67 USD' (each currency's total, in the order they appear)."""
    totals: dict[str, int] = {}
    for transfer in transfers:
        totals[transfer.currency] = totals.get(transfer.currency, 0) + transfer.amount
    money = " + ".join(
        f"{_grouped(total, currency)} {currency}" for currency, total in totals.items()
    )
    noun = "transfer" if len(transfers) == 1 else "transfers"
    return f"{len(transfers):,} {noun}, {money}"


def summary_line(transfers: Sequence[TransferRequest], counts: dict[str, int]) -> str:
    """'1,000 transfers, 12,345.67 USD: 990 completed, 8 failed, 2 compensated'."""
    said = ", ".join(f"{n:,} {status.lower()}" for status, n in counts.items())
    return f"{totals_line(transfers)}: {said}"


def _grouped(minor: int, currency: str) -> str:
    """12345678 USD -> '123,456.78'."""
    whole, point, fraction = format_amount(minor, currency).partition(".")
    return f"{int(whole):,}{point}{fraction}"
