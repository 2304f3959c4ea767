"""Carries out a fault schedule on a running dev stack, and restarts its worker whenever it exits
by itself, as a process manager would (a worker refuses to start while a shard is unreachable).
The faults on processes live here; those on traffic in duplicates.py, interference.py and
reuse.py, the crash-after-commit worker in crash.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import count
from pathlib import Path

from transfers.devtools.chaos.crash import CrashingWorkers
from transfers.devtools.chaos.duplicates import DuplicateBursts
from transfers.devtools.chaos.effects import Effect, InjectedFault, attempted
from transfers.devtools.chaos.interference import Interference
from transfers.devtools.chaos.reuse import SameIdRuns
from transfers.devtools.chaos.schedule import IN_TURN, Fault, FaultKind
from transfers.devtools.devstack.processes import ChildProcess
from transfers.devtools.devstack.stack import TEMPORAL_STOP_TIMEOUT_S, DevStack
from transfers.devtools.devstack.temporal_server import connect_when_ready, temporal_server
from transfers.devtools.devstack.worker_process import worker_process
from transfers.settings import StackInfo

SUPERVISE_EVERY_S = 0.5
TEMPORAL_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class TrafficFaults:
    """The faults that act through the traffic rather than on processes."""

    bursts: DuplicateBursts
    interference: Interference
    reuse: SameIdRuns


class FaultInjector:
    """Injects the faults of a schedule into `stack`; `clean_up` undoes what a run cut short
    left (a paused shard, a crash worker)."""

    def __init__(self, stack: DevStack, info: StackInfo, traffic: TrafficFaults) -> None:
        self.stack = stack
        self.info = info
        self.traffic = traffic
        self.crashing = CrashingWorkers(stack.options.data_dir, info)
        self.injected: list[InjectedFault] = []
        self.active: set[str] = set()  # descriptions of the faults under way, for the progress
        self.worker_restarts = 0  # by the supervisor, after the worker exited by itself
        self._paused: dict[int, list[int]] = {}
        self._killing = False
        self._generations: dict[str, Iterator[int]] = {}  # log name -> next number

    async def run(self, schedule: list[Fault], started_at: float) -> None:
        """Each fault at its offset from `started_at` (loop time); the faults on processes
        take their turns one after another, the others run beside them."""
        in_turn = [fault for fault in schedule if fault.kind in IN_TURN]
        beside = [fault for fault in schedule if fault.kind not in IN_TURN]

        async def one_after_another() -> None:
            for fault in in_turn:
                await self._at_its_time(fault, started_at)

        await asyncio.gather(
            one_after_another(), *(self._at_its_time(fault, started_at) for fault in beside)
        )

    async def supervise(self) -> None:
        """Start a new worker whenever the current one exits unasked; runs until cancelled."""
        while True:
            await asyncio.sleep(SUPERVISE_EVERY_S)
            worker = self.stack.worker
            exited = worker is None or worker.process is None or worker.process.poll() is not None
            if exited and not self._killing:
                self.worker_restarts += 1
                self._start_worker()

    def clean_up(self) -> None:
        for shard in list(self._paused):
            self._thaw(shard)
        self.crashing.stop_all()

    async def _at_its_time(self, fault: Fault, started_at: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, started_at + fault.at_s - loop.time()))
        began = loop.time() - started_at
        self.active.add(fault.describe())
        try:
            effect = await self._inject(fault)
        finally:
            self.active.discard(fault.describe())
        self.injected.append(InjectedFault(fault, began, loop.time() - started_at, effect))

    async def _inject(self, fault: Fault) -> Effect:
        kind, traffic = fault.kind, self.traffic
        if kind == FaultKind.WORKER_KILL:
            return await self._kill_worker(fault.hold_s)
        if kind == FaultKind.TEMPORAL_RESTART:
            return await self._restart_temporal(fault.hold_s)
        if kind == FaultKind.DUPLICATE_BURST:
            return await traffic.bursts.fire()
        if kind == FaultKind.KILL_AFTER_COMMIT:
            return await self.crashing.crash_after(_step(fault))
        if kind == FaultKind.CANCEL:
            return await traffic.interference.cancel()
        if kind == FaultKind.SAME_ID_OTHER_FIELDS:
            return await traffic.reuse.start()
        shard = _target(fault)
        if kind == FaultKind.FREEZE_FLIP:
            return await traffic.interference.freeze_flip(shard, fault.hold_s)
        if kind == FaultKind.SHARD_RESTART:
            return await self._restart_shard(shard, fault.hold_s)
        return await self._pause_shard(shard, fault.hold_s)

    async def _kill_worker(self, down_s: float) -> Effect:
        worker = self.stack.worker
        if worker is None or worker.process is None or worker.process.poll() is not None:
            return attempted("no worker to kill")  # the supervisor is starting one
        self._killing = True
        try:
            worker.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(worker.process.wait)
            await asyncio.sleep(down_s)
            self._start_worker()
        finally:
            self._killing = False
        return Effect(f"killed pid {worker.process.pid}")

    def _start_worker(self) -> None:
        # Started from the event loop's thread: a child asks for SIGTERM when the thread that
        # forked it ends (PR_SET_PDEATHSIG), and a pool thread may end at any time.
        self.stack.worker = self._own_log(worker_process(self.stack.options.data_dir, self.info))
        self.stack.worker.start()

    async def _restart_temporal(self, down_s: float) -> Effect:
        options, old = self.stack.options, self.stack.temporal
        was_serving = old is not None and old.process is not None and old.process.poll() is None
        if old is not None:
            await asyncio.to_thread(old.stop, TEMPORAL_STOP_TIMEOUT_S)
        await asyncio.sleep(down_s)
        server = temporal_server(
            options.data_dir, options.temporal_port, options.ui_port, options.namespace
        )
        self.stack.temporal = self._own_log(server)
        self.stack.temporal.start()
        loop = asyncio.get_running_loop()
        launched = loop.time()
        await connect_when_ready(
            self.stack.temporal,
            options.temporal_port,
            options.ui_port,
            options.namespace,
            asyncio.Event(),
            TEMPORAL_START_TIMEOUT_S,
        )
        note = f"serving again {loop.time() - launched:.1f}s after its start"
        return Effect(note, took_effect=was_serving)

    async def _restart_shard(self, shard: int, down_s: float) -> Effect:
        server = self.stack.shards[shard]
        was_running = server.pid() is not None
        await asyncio.to_thread(server.stop, "immediate")  # no shutdown checkpoint: a crash
        await asyncio.sleep(down_s)
        await asyncio.to_thread(server.start)
        return Effect(f"port {server.port}, crash recovery on start", took_effect=was_running)

    async def _pause_shard(self, shard: int, pause_s: float) -> Effect:
        postmaster = self.stack.shards[shard].pid()
        if postmaster is None:
            return attempted("not running")
        # The postmaster first, so that it forks no backend while they are being stopped.
        os.kill(postmaster, signal.SIGSTOP)
        self._paused[shard] = [postmaster, *_children(postmaster)]
        for pid in self._paused[shard][1:]:
            os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(pause_s)
        finally:
            stopped = len(self._paused[shard])
            self._thaw(shard)
        return Effect(f"{stopped} processes stopped")

    def _thaw(self, shard: int) -> None:
        for pid in self._paused.pop(shard, []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def _own_log(self, child: ChildProcess) -> ChildProcess:
        """Each new process writes its own log (worker-2.log, ...): the old one tells how the
        last one ended."""
        log = child.log_path
        number = next(self._generations.setdefault(log.stem, count(2)))
        return replace(child, log_path=log.with_name(f"{log.stem}-{number}.log"))


def _target(fault: Fault) -> int:
    if fault.shard is None:
        raise ValueError(f"{fault.kind} needs a shard")
    return fault.shard


def _step(fault: Fault) -> str:
    if fault.step is None:
        raise ValueError(f"{fault.kind} needs a step")
    return fault.step


def _children(parent: int) -> list[int]:
    """Process ids whose parent is `parent`. PostgreSQL's backends each lead their own session,
    so a signal to the postmaster's process group would not reach them."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            after_name = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(after_name[1]) == parent:
            found.append(int(stat.parent.name))
    return found
