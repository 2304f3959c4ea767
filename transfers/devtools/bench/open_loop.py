"""Open-loop load: operations started at a fixed rate, whether or not earlier ones finished.

A closed loop measures throughput but hides queueing: a slow answer delays the next request, so
latency looks better than users see it. Here each operation's latency counts from the moment it
was due, not from when it got to start (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from transfers.devtools.bench import PROGRESS_INTERVAL_S, Operation, Sample


async def offer(
    operation: Operation,
    *,
    rate_per_s: float,
    duration_s: float,
    on_progress: Callable[[int], None] | None = None,
) -> Sample:
    """Start `operation` every 1/`rate_per_s` seconds for `duration_s`, then wait for all."""
    sample = Sample()
    interval_s = 1.0 / rate_per_s
    started_at = time.perf_counter()
    running: set[asyncio.Task[None]] = set()

    async def timed(number: int, due: float) -> None:
        if await operation(number):
            sample.latencies_ms.append((time.perf_counter() - due) * 1000)
        else:
            sample.failed += 1

    number = 0
    next_report = started_at
    while (due := started_at + number * interval_s) < started_at + duration_s:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(timed(number, due))
        running.add(task)
        task.add_done_callback(running.discard)
        number += 1
        if on_progress is not None and time.perf_counter() >= next_report:
            on_progress(len(sample.latencies_ms))
            next_report += PROGRESS_INTERVAL_S
    while running:
        await asyncio.wait(set(running), timeout=PROGRESS_INTERVAL_S)
        if on_progress is not None:
            on_progress(len(sample.latencies_ms))
    sample.elapsed_s = time.perf_counter() - started_at
    return sample
