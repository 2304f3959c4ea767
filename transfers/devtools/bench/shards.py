"""`transfers bench shards`: debit+credit pairs across shards, through the Ledger and as plain SQL.

A pair debits a source account on its shard, then credits a target account on another shard,
each step its own transaction, as the saga does. Each scenario runs as the plain psycopg loop (the
yardstick) and through the Ledger under each lock strategy, the runs interleaved in rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from shards.errors import BusinessError, InfrastructureError
from shards.ledger import Ledger
from shards.lock_strategy import LockStrategy
from shards.migrate import upgrade_all
from shards.router import ShardRouter
from shards.schema import EntryKind
from transfers.devtools.bench import Measurement, Operation, Sample, measure
from transfers.devtools.bench.plain_loop import PlainLoop
from transfers.devtools.bench.workload import CURRENCY, SCENARIOS, Workload, seed
from transfers.devtools.embedded_pg import temporary_servers

PLAIN = "plain"
STRATEGIES: tuple[str, ...] = (PLAIN, *(strategy.value for strategy in LockStrategy))
CREDIT_ATTEMPTS = 10

Progress = Callable[[str, str, int], None]
"""Called with (scenario, strategy, pairs completed so far) while a scenario runs."""


@dataclass(frozen=True)
class BenchOptions:
    duration_s: float = 5.0
    concurrency: int = 16
    accounts: int = 10_000
    warmup_s: float = 0.5
    rounds: int = 5


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    strategy: str
    pairs: int
    failed: int
    pairs_per_s: float
    p50_ms: float
    p99_ms: float
    ratio_to_plain: float

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "strategy": self.strategy,
            "pairs_per_s": round(self.pairs_per_s, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "ratio_to_plain": round(self.ratio_to_plain, 3),
        }


def ledger_pairs(ledger: Ledger, workload: Workload, scenario: str) -> Operation:
    prefix = f"{workload.prefix}-{scenario[0]}-{ledger.strategy.value[:3]}"
    numbers = itertools.count()

    async def pair(_worker: int) -> bool:
        source, target, amount = workload.pair(scenario)
        transfer_id = f"{prefix}-{next(numbers)}"
        try:
            await ledger.debit(transfer_id, source, amount, CURRENCY)
        except (BusinessError, InfrastructureError):  # e.g. VersionConflict on the hot row
            return False
        for attempt in range(CREDIT_ATTEMPTS):  # the debit is in: the credit must land too
            try:
                await ledger.credit(transfer_id, target, amount, CURRENCY)
                return True
            except InfrastructureError:
                await asyncio.sleep(0.01 * (attempt + 1))
        raise RuntimeError(f"bench transfer {transfer_id} debited but could not be credited")

    return pair


def plain_pairs(plain: PlainLoop, workload: Workload, scenario: str) -> Operation:
    prefix = f"{workload.prefix}-{scenario[0]}-{PLAIN}"
    numbers = itertools.count()

    async def pair(worker: int) -> bool:
        source, target, amount = workload.pair(scenario)
        transfer_id = f"{prefix}-{next(numbers)}"
        if not await plain.step(worker, transfer_id, EntryKind.DEBIT, source, amount):
            return False
        return await plain.step(worker, transfer_id, EntryKind.CREDIT, target, amount)

    return pair


async def run_shard_bench(
    dsns: list[str],
    options: BenchOptions,
    on_progress: Progress | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    """Every scenario under the plain loop and both strategies, on the shards at `dsns`.

    The runs are interleaved in `options.rounds` rounds, so that a machine whose load drifts
    (other processes, the disk) weighs on the yardstick and on the layer alike.
    """
    await asyncio.to_thread(upgrade_all, dsns)
    router = ShardRouter.from_dsns(dsns)
    plain: PlainLoop | None = None
    try:
        workload = Workload(router, options.accounts)
        await seed(workload)
        plain = await PlainLoop.connect(dsns, options.concurrency)
        operations = {
            (scenario, strategy): _operation(plain, router, workload, scenario, strategy)
            for scenario in SCENARIOS
            for strategy in STRATEGIES
        }
        samples: dict[tuple[str, str], list[Sample]] = {run: [] for run in operations}
        for round_number in range(options.rounds):
            for run, operation in operations.items():
                samples[run].append(
                    await _sample(operation, options, run, samples[run], on_progress, round_number)
                )
        results = _results({run: Measurement.of(taken) for run, taken in samples.items()})
        for result in results:
            if on_result is not None:
                on_result(result)
        return results
    finally:
        if plain is not None:
            await plain.close()
        await router.dispose()


def _operation(
    plain: PlainLoop, router: ShardRouter, workload: Workload, scenario: str, strategy: str
) -> Operation:
    if strategy == PLAIN:
        return plain_pairs(plain, workload, scenario)
    return ledger_pairs(Ledger(router, strategy), workload, scenario)


async def _sample(
    operation: Operation,
    options: BenchOptions,
    run: tuple[str, str],
    earlier: list[Sample],
    on_progress: Progress | None,
    round_number: int,
) -> Sample:
    done_before = sum(len(sample.latencies_ms) for sample in earlier)

    def report(pairs: int) -> None:
        if on_progress is not None:
            on_progress(*run, done_before + pairs)

    return await measure(
        operation,
        workers=options.concurrency,
        duration_s=options.duration_s / options.rounds,
        warmup_s=options.warmup_s if round_number == 0 else 0.0,
        on_progress=report,
    )


def _results(measured: dict[tuple[str, str], Measurement]) -> list[ScenarioResult]:
    results = []
    for (scenario, strategy), measurement in measured.items():
        yardstick = measured[scenario, PLAIN].per_s
        results.append(
            ScenarioResult(
                name=scenario,
                strategy=strategy,
                pairs=measurement.completed,
                failed=measurement.failed,
                pairs_per_s=measurement.per_s,
                p50_ms=measurement.p50_ms,
                p99_ms=measurement.p99_ms,
                ratio_to_plain=measurement.per_s / yardstick if yardstick else 0.0,
            )
        )
    return results


@contextlib.contextmanager
def temporary_shards(count: int = 3) -> Iterator[list[str]]:
    """`count` durable embedded PostgreSQL servers (fsync on, like production), removed after."""
    with temporary_servers(count, durable=True, prefix="transfers-bench-") as dsns:
        yield dsns
