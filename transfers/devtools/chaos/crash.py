"""The kill-after-commit fault: a second worker that exits right after the first shard transaction
of one step commits, before the workflow task that ran it completes.

The worker reads TRANSFERS_CRASH_AFTER_COMMIT=<step> (activities/ledger.py) and exits with code 70
right after that commit. It runs beside the stack's worker, which takes the lost task over once
Temporal times it out and re-runs it from a history without the step: the case where a re-run must
decide exactly what the lost run decided (issue 11). Only an exit with code 70 counts.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from itertools import count
from pathlib import Path

from activities.ledger import CRASH_AFTER_COMMIT, CRASH_EXIT_CODE
from transfers.devtools.chaos.effects import Effect, attempted
from transfers.devtools.devstack.processes import ChildProcess
from transfers.devtools.devstack.worker_process import worker_process
from transfers.settings import StackInfo

CRASH_WAIT_S = 30.0  # for the step to commit, a start-up held up by a fault included
WATCH_EVERY_S = 0.2


class CrashingWorkers:
    """Starts crash-after-commit workers and waits for each to die; `stop_all` ends any left."""

    def __init__(self, data_dir: Path, info: StackInfo) -> None:
        self.data_dir = data_dir
        self.info = info
        self.running: list[ChildProcess] = []
        self._numbers = count(1)

    async def crash_after(self, step: str) -> Effect:
        """A worker that dies after `step` commits; started again if it could not start (a
        worker refuses to while Temporal or a shard is unreachable), within CRASH_WAIT_S."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CRASH_WAIT_S
        exits: list[int] = []
        while loop.time() < deadline:
            worker = self._start(step)
            code = await self._exit_code(worker, deadline)
            if code == CRASH_EXIT_CODE:
                return Effect(f"{worker.log_path.name} exited {code} after a {step} commit")
            if code is None:
                break
            exits.append(code)
        started = f"{len(exits) + 1} worker(s) started"
        return attempted(f"no {step} commit in {CRASH_WAIT_S:g}s ({started}, exits {exits})")

    def stop_all(self) -> None:
        for worker in self.running:
            if worker.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                worker.process.wait()
        self.running.clear()

    def _start(self, step: str) -> ChildProcess:
        worker = worker_process(self.data_dir, self.info)
        log = worker.log_path.with_name(f"worker-crash-{step}-{next(self._numbers)}.log")
        worker = replace(worker, log_path=log, env={**(worker.env or {}), CRASH_AFTER_COMMIT: step})
        # Started from the event loop's thread, as FaultInjector._start_worker explains.
        worker.start()
        self.running.append(worker)
        return worker

    async def _exit_code(self, worker: ChildProcess, deadline: float) -> int | None:
        """The worker's exit code; None if it still ran at `deadline` (then it is killed)."""
        process = worker.process
        if process is None:
            raise RuntimeError("the crash worker did not start")
        loop = asyncio.get_running_loop()
        while (code := process.poll()) is None:  # a Popen has nothing to await
            if loop.time() >= deadline:
                break
            await asyncio.sleep(WATCH_EVERY_S)
        if code is None:
            process.kill()
            await asyncio.to_thread(process.wait)
        self.running.remove(worker)
        return code
