"""The dev stack: shards, Temporal and a worker started in order, stopped in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from transfers.devtools.devstack.data_dir import check_shard_count, lock_data_dir
from transfers.devtools.devstack.demo import DemoTransfer, run_demo
from transfers.devtools.devstack.ports import require_free
from transfers.devtools.devstack.processes import ChildProcess, StackError, StopRequested
from transfers.devtools.devstack.shard_servers import shard_servers, start_and_migrate, stop_all
from transfers.devtools.devstack.temporal_server import HOST, connect_when_ready, temporal_server
from transfers.devtools.devstack.worker_process import wait_until_polling, worker_process
from transfers.devtools.embedded_pg import EmbeddedPostgres
from transfers.settings import STACK_FILE, StackInfo, load_settings, write_stack

WORKER_STOP_TIMEOUT_S = 30.0  # running activities get this long to finish
TEMPORAL_STOP_TIMEOUT_S = 15.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class DevOptions:
    data_dir: Path
    shard_count: int = 3
    temporal_port: int = 7233
    ui_port: int | None = 8233  # None: no Web UI (bench, chaos: nobody looks at it)
    worker: bool = True
    demo: bool = False
    namespace: str = "default"
    task_queue: str = "transfers"
    startup_timeout_s: float = 60.0


class Reporter(Protocol):
    """How `transfers dev` tells its user what happens (for people or as JSON lines)."""

    def ready(self, stack: StackInfo, stack_file: Path) -> None: ...

    def demo(self, transfers: list[DemoTransfer]) -> None: ...

    def problem(self, message: str) -> None: ...

    def stopping(self) -> None: ...


class DevStack:
    """Shards, Temporal dev server and worker of one data dir."""

    def __init__(self, options: DevOptions) -> None:
        self.options = options
        self.shards: list[EmbeddedPostgres] = []
        self.temporal: ChildProcess | None = None
        self.worker: ChildProcess | None = None
        self._lock: IO[str] | None = None

    @property
    def started(self) -> bool:
        """Whether anything runs that a stop would have to end."""
        return bool(self.shards or self.children)

    @property
    def children(self) -> list[ChildProcess]:
        return [child for child in (self.temporal, self.worker) if child is not None]

    async def start(self, stopping: asyncio.Event) -> StackInfo:
        options = self.options
        # Histories, balances, passwords and logs: nothing the stack writes is for other users.
        os.umask(0o077)
        self._lock = lock_data_dir(options.data_dir)
        (options.data_dir / STACK_FILE).unlink(missing_ok=True)  # left by a killed run
        check_shard_count(options.data_dir, options.shard_count)
        require_free(options.temporal_port, "--temporal-port")
        if options.ui_port is not None:
            require_free(options.ui_port, "--ui-port")
        self.temporal = temporal_server(
            options.data_dir, options.temporal_port, options.ui_port, options.namespace
        )
        self.temporal.start()  # it starts while the shards do
        self.shards = shard_servers(options.data_dir, options.shard_count)
        await start_and_migrate(self.shards)
        client = await connect_when_ready(
            self.temporal,
            options.temporal_port,
            options.ui_port,
            options.namespace,
            stopping,
            options.startup_timeout_s,
        )
        stack = StackInfo(
            temporal_address=f"{HOST}:{options.temporal_port}",
            namespace=options.namespace,
            task_queue=options.task_queue,
            ui_url=None if options.ui_port is None else f"http://localhost:{options.ui_port}",
            shard_dsns=[server.dsn for server in self.shards],
        )
        if options.worker:
            self.worker = worker_process(options.data_dir, stack)
            self.worker.start()
            await wait_until_polling(
                client, stack, self.children, stopping, options.startup_timeout_s
            )
        write_stack(options.data_dir, stack)
        return stack

    def check_children(self) -> None:
        for child in self.children:
            child.check_running()

    def stop(self) -> None:
        """Worker first (it may be mid-transfer), then Temporal, then the shards."""
        if self._lock is None:  # another stack owns the data dir, or this one stopped already
            return
        (self.options.data_dir / STACK_FILE).unlink(missing_ok=True)
        if self.worker is not None:
            self.worker.stop(WORKER_STOP_TIMEOUT_S)
        if self.temporal is not None:
            self.temporal.stop(TEMPORAL_STOP_TIMEOUT_S)
        stop_all(self.shards)
        self._lock.close()
        self._lock = None


async def serve(options: DevOptions, reporter: Reporter) -> int:
    """Run the stack until a stop signal (exit code 0) or a failure (reported, exit code 1)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stopping.set)
    stack = DevStack(options)
    demo: asyncio.Task[list[DemoTransfer]] | None = None
    try:
        info = await stack.start(stopping)
        reporter.ready(info, options.data_dir / STACK_FILE)
        if options.demo:
            demo = asyncio.create_task(run_demo(load_settings(options.data_dir)))
        while not stopping.is_set():
            stack.check_children()
            if demo is not None and demo.done():
                _report_demo(demo, reporter)
                demo = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=0.5)
        return 0
    except StopRequested:
        return 0
    except StackError as error:
        reporter.problem(str(error))
        return 1
    finally:
        if demo is not None:
            demo.cancel()
            await asyncio.wait([demo])
        if stack.started:
            reporter.stopping()
        stack.stop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


def _report_demo(demo: asyncio.Task[list[DemoTransfer]], reporter: Reporter) -> None:
    """The stack stays useful when the demo fails, so its failure is reported, not fatal."""
    try:
        transfers = demo.result()
    except Exception as error:  # whatever broke the optional demo
        reporter.problem(f"demo failed: {type(error).__name__}: {error}")
    else:
        reporter.demo(transfers)
