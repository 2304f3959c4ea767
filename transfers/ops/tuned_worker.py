"""The transfers worker's set-up (slots, workflow runner, graceful shutdown) and its run loop.

Shared by the worker (worker.py, which adds the transfer workflows and ledger activities) and
`transfers bench e2e`'s ceiling worker (transfers.devtools.bench.bench_worker), so that the
yardstick runs on exactly the set-up it measures; neither imports the other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Interceptor, UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from transfers.settings import Settings
from workflows import policies

log = logging.getLogger("transfers.worker")


def tuned_worker(
    client: Client,
    settings: Settings,
    *,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]],
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """A worker with the transfers worker's set-up (slots, runner, shutdown) for `workflows`;
    `transfers bench e2e` runs its ceiling workflow on one."""
    runner = SandboxedWorkflowRunner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner()
    return Worker(
        client,
        task_queue=settings.transfers_task_queue,
        workflow_runner=runner,
        interceptors=interceptors,
        workflows=workflows,
        activities=activities,
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_local_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        # a running step gets as long to finish as its own timeout allows
        graceful_shutdown_timeout=policies.STEP_START_TO_CLOSE,
    )


async def run_until(worker: Worker, stop: asyncio.Event) -> None:
    """Run `worker` until `stop` is set, then let its running activities finish."""
    running = asyncio.create_task(worker.run())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():  # the worker failed on its own: report it
        stopping.cancel()
        running.result()
        return
    log.info("stopping: no new tasks; waiting for running activities to finish")
    await worker.shutdown()
    await running
    log.info("worker stopped")
