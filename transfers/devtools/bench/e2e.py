"""`transfers bench e2e`: what it measures and what it reports (the run itself is in e2e_run).

Scenarios, each on a worker process of its own, one after another against one Temporal server:
- ceiling: `CeilingWorkflow` (two no-op steps called as the transfers call theirs) on a worker
  set up as the transfers worker is: what Temporal and our worker set-up cost without a database;
- baseline: `BaselineWorkflow` (two regular activities) on a worker with the SDK's defaults;
- uniform / hot under each lock strategy: transfers between random accounts on different shards,
  or every one out of the same account;
- open-uniform at fractions of uniform's closed-loop rate: latency against offered load;
- in flight: N transfers submitted with no worker running, then drained by one;
- batch / batch-hot: `TransferBatchWorkflow`s of `batch_size` transfers submitted through
  `TransfersClient.submit_batch`, `batch_concurrency` at once, on the default strategy's worker
  (uniform's pairs, or every transfer out of the hot account); figures in transfers, latency per
  batch; with `singles_alongside`, that many submitters of single transfers on the same pairs
  beside them (for the audit and the deadlock count: batches and single steps on one account).
`scenarios` keeps a subset of these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shards.lock_strategy import LockStrategy
from transfers.devtools.bench import Measurement
from transfers.devtools.bench.resources import Usage
from workflows.batch_models import DEFAULT_BATCH_SIZE

CEILING = "ceiling"
BASELINE = "baseline"
UNIFORM = "uniform"
HOT = "hot"
OPEN_UNIFORM = "open-uniform"
INFLIGHT = "inflight"
BATCH = "batch"
BATCH_HOT = "batch-hot"
SCENARIOS = (CEILING, BASELINE, UNIFORM, HOT, OPEN_UNIFORM, INFLIGHT, BATCH, BATCH_HOT)
BATCH_PAIRS = {BATCH: UNIFORM, BATCH_HOT: HOT}  # whose account pairs a batch scenario moves
DEFAULT_STRATEGY = LockStrategy.PESSIMISTIC


@dataclass(frozen=True)
class E2EOptions:
    duration_s: float = 30.0
    concurrency: int = 32
    accounts: int = 30_000  # 10,000 a shard on the embedded stack's three
    warmup_s: float = 3.0
    rounds: int = 3  # closed loop: each scenario measured in this many turns
    loads: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)  # open loop, fractions of uniform's rate
    inflight: int = 5_000
    strategies: tuple[LockStrategy, ...] = tuple(LockStrategy)
    scenarios: tuple[str, ...] = SCENARIOS
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_concurrency: int = 4  # closed loop: batches in flight
    singles_alongside: int = 0  # submitters of single transfers beside the batches
    workers: int = 1  # worker processes a scenario runs on (on its one task queue)

    def runs(self, scenario: str) -> bool:
        return scenario in self.scenarios


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    strategy: str | None  # None for the yardsticks, which touch no shard
    measurement: Measurement
    usage: Usage
    concurrency: int | None = None  # closed loop: submitters at once
    offered_per_s: float | None = None  # open loop: the rate offered
    load: float | None = None  # open loop: offered_per_s as a fraction of uniform's rate
    batch_size: int | None = None  # batches: the measurement counts batches of this many
    alongside: Measurement | None = None  # batches: single transfers run beside them

    @property
    def label(self) -> str:
        text = self.name if self.strategy is None else f"{self.name} / {self.strategy}"
        if self.batch_size is not None:
            text = f"{text} ({self.batch_size:,} a batch)"
        if self.alongside is not None:
            text = f"{text} + singles"
        return text if self.offered_per_s is None else f"{text} @ {self.offered_per_s:.0f}/s"

    @property
    def completed(self) -> int:
        """Transfers (or no-op workflows) completed: a batch counts once every one of its
        transfers is COMPLETED."""
        return self.measurement.completed * (self.batch_size or 1)

    @property
    def per_s(self) -> float:
        """Transfers (or no-op workflows) completed a second."""
        return self.measurement.per_s * (self.batch_size or 1)

    @property
    def cpu_ms_per_transfer(self) -> float | None:
        """CPU of the worker, the server and the shards (those measured) per completed transfer,
        the singles alongside included; the load generator's is left out."""
        completed = self.completed + (self.alongside.completed if self.alongside else 0)
        if not completed:
            return None
        usage = self.usage
        cpu_s = usage.worker_cpu_s + (usage.server_cpu_s or 0.0) + (usage.shards_cpu_s or 0.0)
        return cpu_s * 1000 / completed

    def as_json(self) -> dict[str, Any]:
        measured, usage = self.measurement, self.usage
        batched = self.batch_size is not None
        return {
            "name": self.name,
            "strategy": self.strategy,
            "mode": "closed" if self.offered_per_s is None else "open",
            "concurrency": self.concurrency,  # batches: batches in flight
            "offered_per_s": _round(self.offered_per_s, 1),
            "per_s": round(self.per_s, 1),  # transfers/s, batches' included
            "batch_size": self.batch_size,
            "batches_per_s": round(measured.per_s, 2) if batched else None,
            "p50_ms": round(measured.p50_ms, 1),  # batches: per batch
            "p95_ms": round(measured.p95_ms, 1),
            "p99_ms": round(measured.p99_ms, 1),
            "completed": self.completed,
            "failed": measured.failed,  # batches: batches with a transfer not COMPLETED
            "cpu_ms_per_transfer": _round(self.cpu_ms_per_transfer, 3),
            "singles_alongside": None
            if self.alongside is None
            else {
                "completed": self.alongside.completed,
                "failed": self.alongside.failed,
                "per_s": round(self.alongside.per_s, 1),
                "p99_ms": round(self.alongside.p99_ms, 1),
            },
            "server_cpu_s": _round(usage.server_cpu_s, 1),
            "worker_cpu_s": round(usage.worker_cpu_s, 1),
            "shards_cpu_s": _round(usage.shards_cpu_s, 1),
            "load_cpu_s": round(usage.load_cpu_s, 1),
            "worker_peak_rss_mb": round(usage.worker_peak_rss_mb, 1),
        }


@dataclass(frozen=True)
class InflightResult:
    """N transfers started while no worker ran, then drained by one worker process."""

    transfers: int
    submit_s: float
    drain_s: float
    completed: int
    usage: Usage

    def as_json(self) -> dict[str, Any]:
        return {
            "transfers": self.transfers,
            "submit_s": round(self.submit_s, 1),
            "drain_s": round(self.drain_s, 1),
            "drain_per_s": round(self.transfers / self.drain_s, 1) if self.drain_s else None,
            "completed": self.completed,
            "worker_peak_rss_mb": round(self.usage.worker_peak_rss_mb, 1),
            "worker_cpu_s": round(self.usage.worker_cpu_s, 1),
        }


@dataclass(frozen=True)
class Integrity:
    """The shards after the run: the audit, and deadlocks PostgreSQL detected during it."""

    audit_violations: int
    deadlocks: int

    def as_json(self) -> dict[str, Any]:
        return {
            "audit_ok": self.audit_violations == 0,
            "audit_violations": self.audit_violations,
            "deadlocks": self.deadlocks,
        }


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    limit: float
    at_most: bool = False  # the value must stay at or below the limit, else reach it

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _round(self.value, 3),
            "limit": self.limit,
            "met": self.met,
        }


@dataclass
class E2EReport:
    options: E2EOptions
    scenarios: list[ScenarioResult] = field(default_factory=list)
    inflight: InflightResult | None = None
    integrity: Integrity | None = None
    plot: str | None = None

    def closed(self, name: str, strategy: str | None = None) -> ScenarioResult | None:
        for result in self.scenarios:
            if result.name == name and result.strategy == strategy and result.load is None:
                return result
        return None

    def ratios(self) -> dict[str, float | None]:
        return {name: value for name, (value, _) in self._ratios().items()}

    def missing_ratios(self) -> dict[str, str]:
        """Why each ratio without a value has none."""
        return {name: why for name, (value, why) in self._ratios().items() if value is None}

    def _ratios(self) -> dict[str, tuple[float | None, str]]:
        """Each ratio with what it lacks when it has no value (a scenario that did not run)."""

        def between(
            numerator: tuple[str, LockStrategy | None], denominator: tuple[str, LockStrategy | None]
        ) -> tuple[float | None, str]:
            rates = []
            for name, strategy in (numerator, denominator):
                result = self.closed(name, None if strategy is None else strategy.value)
                label = name if strategy is None else f"{name} / {strategy.value}"
                if result is None:
                    return None, f"{label} did not run"
                if not result.per_s:
                    return None, f"{label} completed nothing"
                rates.append(result.per_s)
            return rates[0] / rates[1], ""

        uniform = (UNIFORM, DEFAULT_STRATEGY)
        batch = (BATCH, DEFAULT_STRATEGY)
        ratios = {
            "transfers_to_ceiling": between(uniform, (CEILING, None)),
            "transfers_to_baseline": between(uniform, (BASELINE, None)),
            "hot_to_uniform": between((HOT, DEFAULT_STRATEGY), uniform),
            "batch_to_uniform": between(batch, uniform),
            "batch_hot_to_batch": between((BATCH_HOT, DEFAULT_STRATEGY), batch),
        }
        for strategy in self.options.strategies:  # the other strategy's, named after it
            if strategy != DEFAULT_STRATEGY:
                suffix = f"_{strategy.value}"
                ratios["transfers_to_ceiling" + suffix] = between(
                    (UNIFORM, strategy), (CEILING, None)
                )
                ratios["hot_to_uniform" + suffix] = between((HOT, strategy), (UNIFORM, strategy))
        half = self.half_load()
        ratios["open_p99_to_p50_at_half"] = (
            (None, f"{OPEN_UNIFORM} did not run")
            if half is None
            else (_ratio(half.measurement.p99_ms, half.measurement.p50_ms), "no latency measured")
        )
        return ratios

    def half_load(self) -> ScenarioResult | None:
        """The open-loop run nearest half of the maximum rate."""
        runs = [result for result in self.scenarios if result.load is not None]
        return min(runs, key=lambda run: abs((run.load or 0) - 0.5), default=None)

    def targets(self) -> list[Target]:
        ratios = self.ratios()
        integrity = self.integrity
        inflight = self.inflight
        batch = self.closed(BATCH, DEFAULT_STRATEGY.value)
        batches = f"{self.options.batch_concurrency} batches of {self.options.batch_size:,}"
        return [
            Target("uniform >= 0.9 x ceiling", ratios["transfers_to_ceiling"], 0.9),
            Target("uniform >= 2 x baseline", ratios["transfers_to_baseline"], 2.0),
            Target("hot >= 0.8 x uniform", ratios["hot_to_uniform"], 0.8),
            Target(
                "lost updates (audit violations) = 0",
                None if integrity is None else integrity.audit_violations,
                0,
                at_most=True,
            ),
            Target("deadlocks = 0", None if integrity is None else integrity.deadlocks, 0, True),
            Target(
                "open loop at half load: p99 <= 3 x p50",
                ratios["open_p99_to_p50_at_half"],
                3.0,
                True,
            ),
            Target(
                f"worker peak RSS MB with {self.options.inflight} in flight <= 500",
                None if inflight is None else inflight.usage.worker_peak_rss_mb,
                500,
                at_most=True,
            ),
            Target("batch >= 3,000 transfers/s", None if batch is None else batch.per_s, 3_000),
            Target("batch_to_uniform >= 100", ratios["batch_to_uniform"], 100),
            Target("batch-hot >= 0.5 x batch", ratios["batch_hot_to_batch"], 0.5),
            Target(
                f"batch p99 s <= 2 ({batches} in flight)",
                None if batch is None else batch.measurement.p99_ms / 1000,
                2.0,
                at_most=True,
            ),
            Target(
                f"batch worker peak RSS MB ({batches} in flight) <= 500",
                None if batch is None else batch.usage.worker_peak_rss_mb,
                500,
                at_most=True,
            ),
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "scenarios": [result.as_json() for result in self.scenarios],
            "ratios": {name: _round(value, 3) for name, value in self.ratios().items()},
            "ratios_missing": self.missing_ratios(),
            "inflight": None if self.inflight is None else self.inflight.as_json(),
            "integrity": None if self.integrity is None else self.integrity.as_json(),
            "targets": [target.as_json() for target in self.targets()],
            "plot": self.plot,
            "options": {
                "duration_s": self.options.duration_s,
                "concurrency": self.options.concurrency,
                "rounds": self.options.rounds,
                "accounts": self.options.accounts,
                "loads": list(self.options.loads),
                "inflight": self.options.inflight,
                "scenarios": list(self.options.scenarios),
                "batch_size": self.options.batch_size,
                "batch_concurrency": self.options.batch_concurrency,
                "singles_alongside": self.options.singles_alongside,
                "workers": self.options.workers,
            },
        }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
