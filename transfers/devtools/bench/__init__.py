"""Benchmarks behind `transfers bench`: concurrent loops against a deadline, and their figures."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

Operation = Callable[[int], Awaitable[bool]]
"""One unit of work for a worker (numbered from 0); True when it completed, False when refused."""

PROGRESS_INTERVAL_S = 0.25


@dataclass
class Sample:
    """What one timed run of an operation gave: a latency per completed call."""

    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Measurement:
    completed: int
    failed: int
    per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Measurement:
        """The samples of one operation taken together (runs interleaved with other ones)."""
        latencies = sorted(latency for sample in samples for latency in sample.latencies_ms)
        elapsed_s = sum(sample.elapsed_s for sample in samples)
        return cls(
            completed=len(latencies),
            failed=sum(sample.failed for sample in samples),
            per_s=len(latencies) / elapsed_s if elapsed_s > 0 else 0.0,
            p50_ms=percentile(latencies, 0.50),
            p95_ms=percentile(latencies, 0.95),
            p99_ms=percentile(latencies, 0.99),
        )


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
) -> Sample:
    """Run `operation` in `workers` loops: `warmup_s` unrecorded, then `duration_s` timed."""
    sample = Sample()
    warm_until = time.perf_counter() + warmup_s
    deadline = warm_until + duration_s

    async def loop(worker: int) -> None:
        while time.perf_counter() < warm_until:
            await operation(worker)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            if await operation(worker):
                sample.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                sample.failed += 1

    async def report() -> None:
        while on_progress is not None:
            on_progress(len(sample.latencies_ms))
            await asyncio.sleep(PROGRESS_INTERVAL_S)

    reporter = asyncio.create_task(report())
    try:
        await asyncio.gather(*(loop(worker) for worker in range(workers)))
    finally:
        reporter.cancel()
    sample.elapsed_s = time.perf_counter() - warm_until
    return sample
