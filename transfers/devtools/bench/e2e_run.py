"""The run of `transfers bench e2e`: a worker process per scenario, load from this process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from temporalio.client import Client

from shards.audit import run_audit
from shards.lock_strategy import LockStrategy
from shards.migrate import upgrade_all
from shards.router import ShardRouter
from transfers.client import TransfersClient
from transfers.devtools.bench import Measurement, Operation, Sample, measure
from transfers.devtools.bench.e2e import (
    BASELINE,
    BATCH,
    BATCH_HOT,
    BATCH_PAIRS,
    CEILING,
    DEFAULT_STRATEGY,
    HOT,
    INFLIGHT,
    OPEN_UNIFORM,
    UNIFORM,
    E2EOptions,
    E2EReport,
    InflightResult,
    Integrity,
    ScenarioResult,
)
from transfers.devtools.bench.noop import BASELINE as BASELINE_WORKFLOW
from transfers.devtools.bench.noop import CEILING as CEILING_WORKFLOW
from transfers.devtools.bench.open_loop import offer
from transfers.devtools.bench.resources import ProcessTree, Usage
from transfers.devtools.bench.workload import Workload, seed
from transfers.devtools.devstack.processes import ChildProcess
from transfers.devtools.devstack.worker_process import python_module, wait_until_polling
from transfers.settings import Settings, StackInfo
from workflows.models import TransferRequest, TransferStatus

CURRENCY = "USD"  # the transfer workflows speak ISO 4217; the bench's accounts are its own
SAMPLE_INTERVAL_S = 0.25
WORKER_START_TIMEOUT_S = 60.0
WORKER_STOP_TIMEOUT_S = 30.0
SUBMITTERS = 64  # in-flight scenario: starts at once
DRAIN_TIMEOUT_S = 1800.0

Progress = Callable[[str, int], None]
"""Called with (scenario label, operations completed so far) while a scenario runs."""


@dataclass(frozen=True)
class BenchStack:
    """What the bench runs against, and the processes whose CPU it can measure (if local)."""

    info: StackInfo
    settings: Settings
    logs: Path
    server_pid: int | None = None
    shard_pids: tuple[int, ...] = ()


@dataclass
class _Plan:
    """A closed-loop scenario: its load, its worker's processes, what its rounds measured."""

    name: str
    strategy: LockStrategy | None
    operation: Operation
    trees: list[ProcessTree]
    concurrency: int  # operations in flight: submitters, or batches
    submit: Callable[..., Operation] | None = None  # transfers: more operations on its queue
    batch_size: int | None = None  # batches: how many transfers an operation moves
    alongside: Operation | None = None  # batches: single transfers run beside them
    samples: list[Sample] = field(default_factory=list)
    alongside_samples: list[Sample] = field(default_factory=list)
    usages: list[Usage] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name if self.strategy is None else f"{self.name} / {self.strategy.value}"


class E2EBench:
    def __init__(self, stack: BenchStack, options: E2EOptions, progress: Progress) -> None:
        self.stack = stack
        self.options = options
        self.progress = progress
        self.run_id = uuid.uuid4().hex[:8]
        self.numbers = itertools.count()

    async def run(self, on_result: Callable[[ScenarioResult], None]) -> E2EReport:
        report = E2EReport(self.options)
        dsns = self.stack.info.shard_dsns
        await asyncio.to_thread(upgrade_all, dsns)
        router = ShardRouter.from_dsns(dsns)
        try:
            workload = Workload(router, self.options.accounts, currency=CURRENCY)
            self.progress(f"opening {self.options.accounts:,} accounts", 0)
            await seed(workload)
            deadlocks_before = await _deadlocks(router)
            client = await Client.connect(
                self.stack.info.temporal_address, namespace=self.stack.info.namespace
            )
            transfers_client = await TransfersClient.connect(self.stack.settings)

            def keep(result: ScenarioResult) -> None:
                report.scenarios.append(result)
                on_result(result)

            async with contextlib.AsyncExitStack() as workers:
                plans = await self._closed_plans(workers, client, transfers_client, workload)
                for result in await self._closed_rounds(plans):
                    keep(result)
                uniform = report.closed(UNIFORM, DEFAULT_STRATEGY.value)
                default = next(
                    (p for p in plans if p.name == UNIFORM and p.strategy == DEFAULT_STRATEGY), None
                )
                submit = None if default is None else default.submit
                opens = self.options.runs(OPEN_UNIFORM)
                if opens and uniform is not None and default is not None and submit is not None:
                    for load in self.options.loads:  # on the default strategy's worker
                        rate = max(uniform.measurement.per_s * load, 1.0)
                        operation = submit(workload, UNIFORM)
                        keep(await self._open(operation, rate, load, default.trees))
            if self.options.inflight and self.options.runs(INFLIGHT):
                report.inflight = await self._inflight(transfers_client, client, workload)
            audit = await run_audit(router)
            report.integrity = Integrity(
                audit_violations=audit.violations,
                deadlocks=await _deadlocks(router) - deadlocks_before,
            )
            return report
        finally:
            await router.dispose()

    # scenarios ----------------------------------------------------------------------------

    async def _closed_plans(
        self,
        workers: contextlib.AsyncExitStack,
        client: Client,
        transfers_client: TransfersClient,
        workload: Workload,
    ) -> list[_Plan]:
        """Every closed-loop scenario chosen, with its worker process, all started now: the
        rounds then take turns on an idle machine, no worker starting in between. The batches
        share the default strategy's worker with its single transfers."""
        options = self.options
        plans = []
        for name, workflow in ((CEILING, CEILING_WORKFLOW), (BASELINE, BASELINE_WORKFLOW)):
            if options.runs(name):
                queue = self._queue(name)
                trees = await workers.enter_async_context(self._worker(name, None, queue, client))
                operation = self._noop(client, workflow, queue)
                plans.append(_Plan(name, None, operation, trees, options.concurrency))
        chosen = {
            strategy: [name for name in (UNIFORM, HOT) if options.runs(name)]
            for strategy in options.strategies
        }
        batched = [name for name in (BATCH, BATCH_HOT) if options.runs(name)]
        if batched:
            chosen.setdefault(DEFAULT_STRATEGY, []).extend(batched)
        for strategy, names in chosen.items():
            if not names:
                continue
            queue = self._queue(strategy.value)
            submit = self._transfers(transfers_client, queue)
            submit_batch = self._batches(transfers_client, queue)
            trees = await workers.enter_async_context(
                self._worker("transfers", strategy, queue, client)
            )
            for name in names:
                if name in BATCH_PAIRS:
                    operation = submit_batch(workload, name)
                    plan = _Plan(name, strategy, operation, trees, options.batch_concurrency)
                    plan.batch_size = options.batch_size
                    if options.singles_alongside:  # on the same accounts, the same worker
                        plan.alongside = submit(workload, BATCH_PAIRS[name])
                else:
                    operation = submit(workload, name)
                    plan = _Plan(name, strategy, operation, trees, options.concurrency, submit)
                plans.append(plan)
        return plans

    async def _closed_rounds(self, plans: list[_Plan]) -> list[ScenarioResult]:
        """Each scenario warmed up, then measured in `rounds` turns taken in order, so that a
        machine whose speed drifts (other load, the databases growing) weighs on all alike."""
        options = self.options
        for plan in plans:
            self.progress(f"{plan.label} (warming up)", 0)
            await measure(plan.operation, workers=plan.concurrency, duration_s=options.warmup_s)
        for round_number in range(options.rounds):
            for plan in plans:
                label = f"{plan.label} (round {round_number + 1}/{options.rounds})"
                done_before = sum(len(sample.latencies_ms) for sample in plan.samples)
                turn_s = options.duration_s / options.rounds
                run = measure(
                    plan.operation,
                    workers=plan.concurrency,
                    duration_s=turn_s,
                    on_progress=functools.partial(self._report, label, done_before),
                )
                if plan.alongside is not None:
                    run = self._beside(run, plan, plan.alongside, turn_s)
                plan.samples.append(await self._sampled(plan.trees, run))
                plan.usages.append(self._usage(plan.trees))
        return [
            ScenarioResult(
                name=plan.name,
                strategy=None if plan.strategy is None else plan.strategy.value,
                measurement=Measurement.of(plan.samples),
                usage=Usage.total(plan.usages),
                concurrency=plan.concurrency,
                batch_size=plan.batch_size,
                alongside=Measurement.of(plan.alongside_samples) if plan.alongside else None,
            )
            for plan in plans
        ]

    async def _beside(
        self, run: Awaitable[Sample], plan: _Plan, singles: Operation, duration_s: float
    ) -> Sample:
        """`run`'s sample, with single transfers submitted beside it (kept on the plan)."""
        sample, beside = await asyncio.gather(
            run, measure(singles, workers=self.options.singles_alongside, duration_s=duration_s)
        )
        plan.alongside_samples.append(beside)
        return sample

    def _report(self, label: str, done_before: int, done: int) -> None:
        self.progress(label, done_before + done)

    async def _open(
        self, operation: Operation, rate: float, load: float, trees: list[ProcessTree]
    ) -> ScenarioResult:
        label = f"{OPEN_UNIFORM} @ {rate:.0f}/s"
        sample = await self._sampled(
            trees,
            offer(
                operation,
                rate_per_s=rate,
                duration_s=self.options.duration_s,
                on_progress=lambda done: self.progress(label, done),
            ),
        )
        return ScenarioResult(
            name=OPEN_UNIFORM,
            strategy=DEFAULT_STRATEGY.value,
            measurement=Measurement.of([sample]),
            usage=self._usage(trees),
            offered_per_s=rate,
            load=load,
        )

    async def _inflight(
        self, transfers_client: TransfersClient, client: Client, workload: Workload
    ) -> InflightResult:
        """N transfers started with no worker polling their queue, then one worker drains them."""
        count = self.options.inflight
        queue = self._queue("inflight")
        starting = self._transfers(transfers_client, queue)(workload, UNIFORM, wait=False)
        label = f"in flight: submitting {count:,}"
        started_at = time.perf_counter()
        await run_batch(starting, count, lambda done: self.progress(label, done))
        submit_s = time.perf_counter() - started_at
        running = f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"
        async with self._worker("inflight", DEFAULT_STRATEGY, queue, client) as trees:
            drain_started = time.perf_counter()
            sampling = asyncio.create_task(_sample_forever(trees))
            try:
                while (left := (await client.count_workflows(running)).count) > 0:
                    self.progress(f"in flight: draining {count:,}", count - left)
                    if time.perf_counter() - drain_started > DRAIN_TIMEOUT_S:
                        break
                    await asyncio.sleep(1.0)
            finally:
                sampling.cancel()
            drain_s = time.perf_counter() - drain_started
            for tree in trees:
                tree.sample()
            usage = self._usage(trees)
        completed = await client.count_workflows(
            f"TaskQueue = '{queue}' AND TransferStatus = '{TransferStatus.COMPLETED}'"
        )
        return InflightResult(count, submit_s, drain_s, completed.count, usage)

    # load ---------------------------------------------------------------------------------

    def _noop(self, client: Client, workflow: str, queue: str) -> Operation:
        async def run(_worker: int) -> bool:
            workflow_id = f"bench-{self.run_id}-{workflow}-{next(self.numbers)}"
            await client.execute_workflow(workflow, "x", id=workflow_id, task_queue=queue)
            return True

        return run

    def _transfers(self, transfers_client: TransfersClient, queue: str) -> Callable[..., Operation]:
        on_queue = _on_queue(transfers_client, queue)

        def of(workload: Workload, scenario: str, *, wait: bool = True) -> Operation:
            async def transfer(_worker: int) -> bool:
                request = _request(workload, scenario, f"bench-{self.run_id}-{next(self.numbers)}")
                if not wait:
                    await on_queue.start(request)
                    return True
                outcome = await on_queue.submit(request)
                return outcome.status == TransferStatus.COMPLETED

            return transfer

        return of

    def _batches(
        self, transfers_client: TransfersClient, queue: str
    ) -> Callable[[Workload, str], Operation]:
        """Batches of `batch_size` transfers through `submit_batch`: True once every one of them
        is COMPLETED."""
        on_queue = _on_queue(transfers_client, queue)
        size = self.options.batch_size

        def of(workload: Workload, scenario: str) -> Operation:
            pairs = BATCH_PAIRS[scenario]

            async def batch(_worker: int) -> bool:
                batch_id = f"bench-{self.run_id}-{next(self.numbers)}"
                requests = [_request(workload, pairs, f"{batch_id}-{n}") for n in range(size)]
                outcome = await on_queue.submit_batch(requests, batch_id=batch_id)
                return outcome.counts.get(TransferStatus.COMPLETED.value) == size

            return batch

        return of

    # processes ----------------------------------------------------------------------------

    def _queue(self, name: str) -> str:
        return f"bench-{self.run_id}-{name}"

    @contextlib.asynccontextmanager
    async def _worker(
        self, name: str, strategy: LockStrategy | None, queue: str, client: Client
    ) -> AsyncIterator[list[ProcessTree]]:
        """The `workers` worker processes of one scenario, on its queue; yields the trees to
        sample: the workers, this process, then the server and the shards when known."""
        info = self.stack.info
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": info.temporal_address,
            "TEMPORAL_NAMESPACE": info.namespace,
            "TRANSFERS_TASK_QUEUE": queue,
            "SHARD_DSNS": ",".join(info.shard_dsns),
            "LOCK_STRATEGY": (strategy or DEFAULT_STRATEGY).value,
            "PYTHONUNBUFFERED": "1",
        }
        if name in (CEILING, BASELINE):
            command = [*python_module("transfers.devtools.bench.bench_worker"), name]
        else:
            command = python_module("worker")
        label = name if strategy is None else f"{name}-{strategy.value}"
        processes = [
            ChildProcess(f"{label} worker", command, self.stack.logs / f"{label}-{n}.log", env)
            for n in range(self.options.workers)
        ]
        try:
            for process in processes:
                process.start()
            self.progress(f"{label}: starting its worker", 0)
            await wait_until_polling(
                client,
                info.model_copy(update={"task_queue": queue}),
                processes,
                asyncio.Event(),
                WORKER_START_TIMEOUT_S,
                pollers=len(processes),
            )
            trees = [ProcessTree(p.process.pid) for p in processes if p.process is not None]
            trees.append(ProcessTree(os.getpid(), descendants=False))
            if self.stack.server_pid is not None:
                trees.append(ProcessTree(self.stack.server_pid))
            trees.extend(ProcessTree(pid) for pid in self.stack.shard_pids)
            yield trees
        finally:
            for process in processes:
                await asyncio.to_thread(process.stop, WORKER_STOP_TIMEOUT_S)

    async def _sampled(self, trees: list[ProcessTree], run: Awaitable[Sample]) -> Sample:
        for tree in trees:
            tree.restart()
        sampling = asyncio.create_task(_sample_forever(trees))
        try:
            return await run
        finally:
            sampling.cancel()
            for tree in trees:
                tree.sample()

    def _usage(self, trees: list[ProcessTree]) -> Usage:
        workers, (load, *rest) = trees[: self.options.workers], trees[self.options.workers :]
        server = rest[0] if self.stack.server_pid is not None else None
        shards = rest[1:] if server is not None else rest
        return Usage.of(server, workers, shards, load)


async def run_batch(operation: Operation, count: int, on_progress: Callable[[int], None]) -> None:
    """Run `operation` `count` times, SUBMITTERS at once."""
    numbers = iter(range(count))
    done = 0

    async def submitter() -> None:
        nonlocal done
        for number in numbers:
            await operation(number)
            done += 1
            if done % 100 == 0:
                on_progress(done)

    await asyncio.gather(*(submitter() for _ in range(SUBMITTERS)))


def _on_queue(transfers_client: TransfersClient, queue: str) -> TransfersClient:
    """The client with its transfers started on `queue` (a scenario's worker's)."""
    settings = transfers_client.settings.model_copy(update={"transfers_task_queue": queue})
    return TransfersClient(transfers_client.client, settings)


def _request(workload: Workload, scenario: str, transfer_id: str) -> TransferRequest:
    source, target, amount = workload.pair(scenario)
    return TransferRequest(
        transfer_id=transfer_id,
        source_account_id=source,
        target_account_id=target,
        amount=amount,
        currency=CURRENCY,
    )


async def _sample_forever(trees: list[ProcessTree]) -> None:
    while True:
        for tree in trees:
            await asyncio.to_thread(tree.sample)
        await asyncio.sleep(SAMPLE_INTERVAL_S)


async def _deadlocks(router: ShardRouter) -> int:
    """Deadlocks PostgreSQL has detected so far, over all shards (pg_stat_database)."""
    total = 0
    for shard in router.shards:
        async with shard.begin() as connection:
            found = await connection.scalar(text("SELECT sum(deadlocks) FROM pg_stat_database"))
            total += int(found or 0)
    return total
