"""The stack's worker: `python -P -m worker` with the stack's addresses in its environment."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from transfers.devtools.devstack.processes import ChildProcess, wait_until
from transfers.settings import StackInfo


def worker_process(data_dir: Path, stack: StackInfo) -> ChildProcess:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": stack.temporal_address,
        "TEMPORAL_NAMESPACE": stack.namespace,
        "TRANSFERS_TASK_QUEUE": stack.task_queue,
        "SHARD_DSNS": ",".join(stack.shard_dsns),
        "PYTHONUNBUFFERED": "1",  # its log file shows each line as it happens
    }
    return ChildProcess("worker", python_module("worker"), data_dir / "logs" / "worker.log", env)


def python_module(module: str) -> list[str]:
    """`python -P -m module`: -P keeps the current folder off the module path, so a `worker.py`
    or a `shards/` there cannot stand in for the installed code."""
    return [sys.executable, "-P", "-m", module]


async def wait_until_polling(
    client: Client,
    stack: StackInfo,
    watched: list[ChildProcess],
    stopping: asyncio.Event,
    timeout_s: float,
    pollers: int = 1,
) -> None:
    """Ready once `pollers` pollers (worker processes: one identity each) have asked the task
    queue for work since the workers started."""
    started_at = datetime.now(UTC) - timedelta(seconds=1)  # slack for the server's clock
    request = DescribeTaskQueueRequest(
        namespace=stack.namespace,
        task_queue=TaskQueue(name=stack.task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )

    async def polling() -> bool:
        try:
            response = await client.workflow_service.describe_task_queue(request)
        except RPCError:  # the server may still be setting the namespace up
            return False
        recent = [p for p in response.pollers if p.last_access_time.ToDatetime(UTC) >= started_at]
        return len({poller.identity for poller in recent}) >= pollers

    await wait_until(
        polling, what="worker", watched=watched, stopping=stopping, timeout_s=timeout_s
    )
