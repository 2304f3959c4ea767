"""One chaos run from start to end: the stack, the accounts, traffic beside the faults,
quiescence, the checks, and the stack stopped again whatever happened."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from shards.ledger import Ledger
from shards.router import ShardRouter
from transfers.client import TransfersClient
from transfers.devtools.chaos.accounts import open_accounts
from transfers.devtools.chaos.duplicates import DuplicateBursts
from transfers.devtools.chaos.evidence import gather_evidence
from transfers.devtools.chaos.faults import FaultInjector, TrafficFaults
from transfers.devtools.chaos.interference import Interference
from transfers.devtools.chaos.invariants import check_all
from transfers.devtools.chaos.mix import TransferMix
from transfers.devtools.chaos.progress import ChaosProgress
from transfers.devtools.chaos.report import BatchFigures, ChaosReport
from transfers.devtools.chaos.reuse import SameIdRuns
from transfers.devtools.chaos.run_record import RunRecord
from transfers.devtools.chaos.schedule import Fault, seeded_random
from transfers.devtools.chaos.workload import Workload
from transfers.devtools.devstack.stack import DevOptions, DevStack
from transfers.devtools.embedded_pg import free_port
from transfers.settings import Settings, StackInfo, load_settings
from transfers.temporal_connection import connect_temporal

QUIESCENCE_TIMEOUT_S = 180.0
DUPLICATE_ANSWER_WAIT_S = 30.0  # once every transfer is final, a duplicate answers at once


@dataclass(frozen=True)
class ChaosOptions:
    seed: int
    duration_s: float
    data_dir: Path
    shard_count: int = 3
    concurrency: int = 12
    batch_concurrency: int = 1  # batch clients beside the `concurrency` single ones


class ChaosRun:
    """A run over its own stack on free ports; `execute` once."""

    def __init__(
        self, options: ChaosOptions, schedule: list[Fault], progress: ChaosProgress
    ) -> None:
        self.options = options
        self.schedule = schedule
        self.progress = progress
        self.stack = DevStack(
            DevOptions(
                data_dir=options.data_dir,
                shard_count=options.shard_count,
                temporal_port=free_port(),
                ui_port=None,
            )
        )
        self.injector: FaultInjector | None = None

    async def execute(self) -> ChaosReport:
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            self.progress.phase("starting the stack")
            info = await self.stack.start(asyncio.Event())
            startup_s = loop.time() - began
            router = ShardRouter.from_dsns(info.shard_dsns)
            try:
                report = await self._exercise(info, router, startup_s)
            finally:
                await router.dispose()
        finally:
            if self.injector is not None:
                self.injector.clean_up()  # a paused shard would never stop
            self.progress.phase("stopping the stack")
            await asyncio.to_thread(self.stack.stop)
        return replace(report, wall_s=loop.time() - began)

    async def _exercise(
        self, info: StackInfo, router: ShardRouter, startup_s: float
    ) -> ChaosReport:
        options, loop, ledger = self.options, asyncio.get_running_loop(), Ledger(router)
        self.progress.phase("opening accounts")
        book = await open_accounts(
            ledger, options.shard_count, seeded_random(options.seed, "accounts")
        )
        client = await _quiet_client(load_settings(options.data_dir))
        mix = TransferMix(book, seeded_random(options.seed, "traffic"), f"chaos-{options.seed}")
        workload = Workload(client, mix, options.concurrency, options.batch_concurrency)
        bursts = DuplicateBursts(workload, seeded_random(options.seed, "duplicates"))
        traffic = TrafficFaults(
            bursts,
            Interference(workload, ledger, book, seeded_random(options.seed, "interference")),
            SameIdRuns(workload, book, seeded_random(options.seed, "reuse")),
        )
        injector = self.injector = FaultInjector(self.stack, info, traffic)
        self.progress.follow(workload, injector)

        self.progress.phase("traffic and faults")
        supervisor = asyncio.create_task(injector.supervise())
        try:
            started = loop.time()
            await asyncio.gather(
                workload.run(options.duration_s), injector.run(self.schedule, started)
            )
            self.progress.phase("waiting for quiescence")
            quiet_from = loop.time()
            await workload.settle(QUIESCENCE_TIMEOUT_S)
            await bursts.collect(DUPLICATE_ANSWER_WAIT_S)
            quiescence_s = loop.time() - quiet_from
        finally:
            supervisor.cancel()

        self.progress.phase("checking invariants")
        # Pooled connections to a shard that was restarted are dead: read on fresh ones.
        await router.dispose()
        singles = {record.request.transfer_id for record in workload.singles()}
        reused = {id_ for id_, record in workload.records.items() if record.other_runs}
        evidence = await gather_evidence(router, client, singles, reused, set(workload.batches))
        record = RunRecord(
            book, workload.records, workload.anomalies, bursts.tally.problems, workload.batches
        )
        return ChaosReport(
            seed=options.seed,
            duration_s=options.duration_s,
            shard_count=options.shard_count,
            accounts=book.account_count,
            schedule=self.schedule,
            injected=injector.injected,
            submitted=len(workload.records),
            by_status=workload.by_status,
            batches=BatchFigures.of(workload),
            disturbed=workload.disturbed,
            duplicates=bursts.tally,
            client_retries=workload.client_retries,
            worker_restarts=injector.worker_restarts,
            checks=check_all(record, evidence),
            startup_s=startup_s,
            quiescence_s=quiescence_s,
            wall_s=0.0,
            data_dir=None,
        )


async def _quiet_client(settings: Settings) -> TransfersClient:
    """A client whose SDK keeps its retry warnings to itself: the run takes Temporal down on
    purpose, and the warnings would bury the progress."""
    quiet = TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter("ERROR", "ERROR")))
    return TransfersClient(
        await connect_temporal(settings, runtime=Runtime(telemetry=quiet)), settings
    )
