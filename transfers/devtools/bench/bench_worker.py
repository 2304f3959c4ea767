"""`python -m transfers.devtools.bench.bench_worker ceiling|baseline`: the e2e yardstick workers.

ceiling: `CeilingWorkflow` on a worker with the transfers worker's set-up
(`transfers.ops.tuned_worker`); baseline: `BaselineWorkflow` on a worker with the SDK's defaults
(sandboxed workflows, regular activities, default slots). Settings come from the environment
like `worker.py`'s; SIGTERM stops.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from temporalio.worker import Worker

from transfers.devtools.bench.noop import BaselineWorkflow, CeilingWorkflow, bench_step
from transfers.ops.tuned_worker import run_until, tuned_worker
from transfers.settings import load_settings
from transfers.temporal_connection import connect_temporal

KINDS = ("ceiling", "baseline")


async def serve(kind: str) -> None:
    settings = load_settings()
    client = await connect_temporal(settings, wait_s=settings.startup_timeout_s)
    if kind == "ceiling":
        worker = tuned_worker(
            client, settings, workflows=[CeilingWorkflow], activities=[bench_step]
        )
    else:
        worker = Worker(
            client,
            task_queue=settings.transfers_task_queue,
            workflows=[BaselineWorkflow],
            activities=[bench_step],
        )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await run_until(worker, stop)


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in KINDS:
        print(
            f"usage: python -m transfers.devtools.bench.bench_worker {'|'.join(KINDS)}",
            file=sys.stderr,
        )
        sys.exit(2)
    asyncio.run(serve(sys.argv[1]))
    sys.stdout.flush()
    os._exit(0)  # as worker.main: the SDK's native threads can crash the interpreter's teardown


if __name__ == "__main__":
    main()
