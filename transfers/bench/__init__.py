"""Benchmarks behind `transfers bench`: concurrent loops against a deadline, and their figures."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Operation = Callable[[int, int], Awaitable[bool]]
"""One unit of work for (worker, sequence number); True when it completed, False when refused."""

PROGRESS_INTERVAL_S = 0.25


@dataclass(frozen=True)
class Measurement:
    completed: int
    failed: int
    elapsed_s: float
    p50_ms: float
    p99_ms: float

    @property
    def per_s(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0


def percentile(ascending: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list; 0 for an empty one."""
    if not ascending:
        return 0.0
    return ascending[max(1, math.ceil(fraction * len(ascending))) - 1]


async def measure(
    operation: Operation,
    *,
    workers: int,
    duration_s: float,
    warmup_s: float = 0.0,
    on_progress: Callable[[int], None] | None = None,
) -> Measurement:
    """Run `operation` in `workers` loops: `warmup_s` unrecorded, then `duration_s` timed."""
    latencies_ms: list[float] = []
    failures = 0
    sequence = iter(range(1 << 62))
    warm_until = time.perf_counter() + warmup_s

    async def loop(worker: int) -> None:
        nonlocal failures
        while time.perf_counter() < warm_until:
            await operation(worker, next(sequence))
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            if await operation(worker, next(sequence)):
                latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                failures += 1

    async def report() -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            if on_progress is not None:
                on_progress(len(latencies_ms))

    deadline = warm_until + duration_s
    reporter = asyncio.create_task(report())
    try:
        await asyncio.gather(*(loop(worker) for worker in range(workers)))
    finally:
        reporter.cancel()
    elapsed_s = time.perf_counter() - warm_until
    if on_progress is not None:
        on_progress(len(latencies_ms))
    latencies_ms.sort()
    return Measurement(
        len(latencies_ms),
        failures,
        elapsed_s,
        percentile(latencies_ms, 0.50),
        percentile(latencies_ms, 0.99),
    )
