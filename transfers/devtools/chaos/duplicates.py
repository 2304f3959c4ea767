"""The duplicate-submission fault: ids already in flight submitted again, as a client that lost
an answer would. With the same fields they must join the one transfer of that id; with other
fields they must be refused (IdempotencyConflict) and move nothing. Batches too: submitted again
as they were (with their id, or with none when it was derived from their content) they must join
the one batch and answer its outcome; their id with other transfers must be refused.

A burst is fired at once and answered in the background (a transfer held up by another fault
answers late), so the schedule goes on; `collect` waits for the answers before the checks.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from shards.errors import IdempotencyConflict
from transfers.devtools.chaos.effects import Effect
from transfers.devtools.chaos.schedule import sample_up_to
from transfers.devtools.chaos.workload import BatchRecord, TransferRecord, Workload
from workflows.models import TransferOutcome, TransferRequest

SAME_FIELDS = 16  # ids in flight, submitted again as they were
FINISHED = 4  # ids already final, submitted again: the first outcome comes back
OTHER_FIELDS = 3  # held ids (else final ones) submitted again with another amount
SAME_BATCHES = 2  # batches (in flight first) submitted again as they were
OTHER_BATCHES = 1  # batch ids submitted again without their last transfer


@dataclass
class DuplicateTally:
    """What the bursts of a run saw; `problems` are violations."""

    joined: int = 0
    refused: int = 0
    unanswered: int = 0  # still unanswered once the system was quiet
    batches_joined: int = 0  # their outcome is checked against the batch's (invariants.batches)
    batches_refused: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (transfer id, what)


class DuplicateBursts:
    """Fires bursts of duplicates into a running workload, and keeps the tally of all of them."""

    def __init__(self, workload: Workload, rng: random.Random) -> None:
        self.workload = workload
        self.rng = rng
        self.tally = DuplicateTally()
        self._answers: list[asyncio.Task[None]] = []

    async def fire(self) -> Effect:
        """Send one burst: it takes effect with duplicates of both sorts."""
        # An id reused with other fields would answer IdempotencyConflict to the same fields.
        records = [record for record in self.workload.singles() if not record.other_runs]
        in_flight = [record for record in records if record.outcome is None]
        finished = [record for record in records if record.outcome is not None]
        # Only a workflow known to exist can be contradicted: another amount sent before the
        # original start would simply start the transfer with that amount. Held ones come
        # first; final ones make up the number when few are held (a fault holds traffic up).
        held = [record for record in in_flight if record.held]
        same = sample_up_to(self.rng, in_flight, SAME_FIELDS) + sample_up_to(
            self.rng, finished, FINISHED
        )
        other = sample_up_to(self.rng, held, OTHER_FIELDS)
        other += sample_up_to(self.rng, finished, OTHER_FIELDS - len(other))
        for record in same + other:
            record.duplicated = True
        self._answers += [asyncio.create_task(self._same_fields(record)) for record in same]
        self._answers += [asyncio.create_task(self._other_fields(record)) for record in other]
        batches = self._fire_batches()
        note = f"{len(same)} with the same fields, {len(other)} with another amount, {batches}"
        return Effect(note, took_effect=bool(same and other))

    def _fire_batches(self) -> str:
        batches = list(self.workload.batches.values())
        in_flight = [batch for batch in batches if batch.outcome is None]
        same = sample_up_to(self.rng, in_flight, SAME_BATCHES)
        same += sample_up_to(
            self.rng, [b for b in batches if b not in same], SAME_BATCHES - len(same)
        )
        # Only a batch known to have started can be contradicted (as `held` above).
        started = [batch for batch in batches if batch.started and len(batch.requests) > 1]
        other = sample_up_to(self.rng, started, OTHER_BATCHES)
        self._answers += [asyncio.create_task(self._same_batch(batch)) for batch in same]
        self._answers += [asyncio.create_task(self._other_batch(batch)) for batch in other]
        return f"{len(same)} batches as they were, {len(other)} with a transfer less"

    async def collect(self, timeout_s: float) -> None:
        """Wait for the answers still out; those that do not come count as unanswered."""
        if not self._answers:
            return
        _, late = await asyncio.wait(self._answers, timeout=timeout_s)
        for task in late:
            task.cancel()
        self.tally.unanswered += len(late)

    async def _same_fields(self, record: TransferRecord) -> None:
        transfer_id, first = record.request.transfer_id, record.outcome
        try:
            outcome = await self._submit_again(record, record.request)
        except Exception as error:  # IdempotencyConflict above all: it is the same transfer
            self.tally.problems.append((transfer_id, f"a duplicate got {_name(error)}"))
            return
        if first is not None and outcome.status != first.status:
            self.tally.problems.append(
                (transfer_id, f"a duplicate answered {outcome.status}, the first {first.status}")
            )
        else:
            self.tally.joined += 1

    async def _other_fields(self, record: TransferRecord) -> None:
        request = record.request
        changed = request.model_copy(update={"amount": request.amount + 1})
        try:
            await self._submit_again(record, changed)
        except IdempotencyConflict:
            self.tally.refused += 1
            return
        except Exception as error:
            self.tally.problems.append((request.transfer_id, f"another amount got {_name(error)}"))
            return
        self.tally.problems.append(
            (request.transfer_id, "a duplicate with another amount was accepted")
        )

    async def _same_batch(self, batch: BatchRecord) -> None:
        """The batch again, as its client would after a lost answer: the outcome it gets is
        kept, for invariants.batches to hold against the batch's."""
        try:
            batch.echoes.append(await self.workload.run_batch(batch))
        except Exception as error:  # IdempotencyConflict above all: it is the same batch
            self.tally.problems.append((f"batch {batch.batch_id}", f"again: {_name(error)}"))
            return
        self.tally.batches_joined += 1

    async def _other_batch(self, batch: BatchRecord) -> None:
        workload, fewer = self.workload, batch.requests[:-1]
        try:
            await workload.retrying(
                batch, lambda: workload.client.start_batch(fewer, batch.batch_id)
            )
        except IdempotencyConflict:
            self.tally.batches_refused += 1
            return
        except Exception as error:
            self.tally.problems.append((f"batch {batch.batch_id}", f"other: {_name(error)}"))
            return
        self.tally.problems.append(
            (f"batch {batch.batch_id}", "its id with a transfer less was accepted")
        )

    async def _submit_again(
        self, record: TransferRecord, request: TransferRequest
    ) -> TransferOutcome:
        workload = self.workload
        return await workload.retrying(record, lambda: workload.start_again(request))


def _name(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
