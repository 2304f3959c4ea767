"""Faults on the traffic itself: transfers and batches in flight cancelled, and accounts in use
frozen for a moment, then unfrozen. Each marks the transfers it may have changed (`disturbed_by`):
their end may then be a refusal or a refund (mix.allowed_statuses), and the money must add up all
the same.
Accounts are never closed: a closed account stays closed, and traffic uses every open one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from shards.errors import InfrastructureError
from shards.ledger import Ledger
from shards.schema import AccountStatus
from transfers.client import TransferNotFound
from transfers.devtools.chaos.accounts import AccountBook
from transfers.devtools.chaos.effects import Effect
from transfers.devtools.chaos.schedule import sample_up_to
from transfers.devtools.chaos.workload import BatchRecord, TransferRecord, Workload

CANCEL_SINGLE = 3  # transfers in flight cancelled per fault
CANCEL_PENDING = 3
CANCEL_BATCHES = 1
CANCEL_WAIT_S = 15.0  # rides out a Temporal restart
FLIPPED_ACCOUNTS = 2
STATUS_WAIT_S = 60.0  # a freeze or unfreeze rides out a shard restart or pause
STATUS_RETRY_S = 0.5


class Interference:
    """Cancels transfers of `workload` and flips accounts of `book`."""

    def __init__(
        self, workload: Workload, ledger: Ledger, book: AccountBook, rng: random.Random
    ) -> None:
        self.workload = workload
        self.ledger = ledger
        self.book = book
        self.rng = rng

    async def cancel(self) -> Effect:
        """Cancel a few single and pending transfers and batches in flight; in effect if one
        was running."""
        in_flight = [r for r in self.workload.singles() if r.outcome is None]
        single = sample_up_to(
            self.rng, [r for r in in_flight if not r.planned.kind.pending], CANCEL_SINGLE
        )
        pending = sample_up_to(
            self.rng, [r for r in in_flight if r.planned.kind.pending], CANCEL_PENDING
        )
        open_batches = [b for b in self.workload.batches.values() if b.outcome is None]
        batches = sample_up_to(self.rng, open_batches, CANCEL_BATCHES)
        cancelled = await asyncio.gather(
            *map(self._cancel, single + pending), *map(self._cancel_batch, batches)
        )
        note = (
            f"{sum(cancelled)} of {len(cancelled)} cancelled while running "
            f"({len(single)} single, {len(pending)} pending, {len(batches)} batches asked)"
        )
        return Effect(note, took_effect=any(cancelled))

    async def freeze_flip(self, shard: int, frozen_s: float) -> Effect:
        """Freeze a few open accounts of `shard` for `frozen_s`, then unfreeze them."""
        every_open = [account for accounts in self.book.open.values() for account in accounts]
        on_shard = [account for account in every_open if self.book.shard_of(account) == shard]
        accounts = sample_up_to(self.rng, on_shard, FLIPPED_ACCOUNTS)
        # Marked before the freeze commits; transfers drawn until the unfreeze are marked too.
        self.workload.frozen.update(accounts)
        self.workload.disturb(set(accounts), "frozen")
        froze = [a for a in accounts if await self._set_status(a, AccountStatus.FROZEN)]
        await asyncio.sleep(frozen_s)
        stuck = []
        for account in accounts:  # each of them: a freeze that seemed to fail may have committed
            if await self._set_status(account, AccountStatus.OPEN):
                self.workload.frozen.discard(account)
            else:
                stuck.append(account)
        note = f"froze {', '.join(froze) or 'nothing'} for {frozen_s:.1f}s"
        if stuck:  # transfers through them stay marked as disturbed
            note += f"; {', '.join(stuck)} could not be unfrozen"
        return Effect(note, took_effect=bool(froze))

    async def _cancel(self, record: TransferRecord) -> bool:
        """Whether the transfer was running when cancelled; unmarked when it was not."""
        transfer_id = record.request.transfer_id
        client = self.workload.client
        return await self._cancel_marked(record, [record], lambda: client.cancel(transfer_id))

    async def _cancel_batch(self, batch: BatchRecord) -> bool:
        """Whether the batch was running when cancelled: then its transfers not known to have
        ended are marked."""
        members = [
            record
            for record in self.workload.records.values()
            if record.batch_id == batch.batch_id and record.outcome is None
        ]
        client = self.workload.client
        batch.cancelled = await self._cancel_marked(
            batch, members, lambda: client.cancel_batch(batch.batch_id)
        )
        return batch.cancelled

    async def _cancel_marked(
        self,
        asker: TransferRecord | BatchRecord,
        marked: list[TransferRecord],
        cancel: Callable[[], Awaitable[bool]],
    ) -> bool:
        """Mark `marked` "cancelled", then `cancel`; unmarked when nothing was running."""
        for record in marked:
            record.disturbed_by.add("cancelled")
        try:
            async with asyncio.timeout(CANCEL_WAIT_S):
                running = await self.workload.retrying(asker, cancel)
        except TransferNotFound:  # its client has not started it yet
            running = False
        except TimeoutError:
            return False  # Temporal stayed away; the cancellation may have arrived: still marked
        if not running:
            for record in marked:
                record.disturbed_by.discard("cancelled")
        return running

    async def _set_status(self, account_id: str, status: AccountStatus) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STATUS_WAIT_S
        while True:
            try:
                await self.ledger.set_status(account_id, status)
                return True
            except InfrastructureError:
                if loop.time() + STATUS_RETRY_S > deadline:
                    return False
                await asyncio.sleep(STATUS_RETRY_S)
