"""The yardsticks of `transfers bench e2e`: no-op workflows of a transfer's shape, no database.

`CeilingWorkflow` calls two steps the way the transfer workflows call theirs (same kind of
activity, same timeouts and retry policy) and runs on a worker with the transfers worker's
settings: what Temporal and the worker cost on their own. `BaselineWorkflow` calls two regular
activities, as a straightforward Temporal sample would, for a worker with the SDK's defaults.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from workflows.saga_steps import run_step

CEILING = "CeilingWorkflow"
BASELINE = "BaselineWorkflow"


@activity.defn(name="bench_step")
async def bench_step(payload: str) -> str:
    """A step that does nothing: its cost is Temporal's and the worker's."""
    return payload


@workflow.defn(name=CEILING)
class CeilingWorkflow:
    @workflow.run
    async def run(self, payload: str) -> str:
        for _ in range(2):
            payload = await run_step(bench_step, payload, summary="no-op step")
        return payload


@workflow.defn(name=BASELINE)
class BaselineWorkflow:
    @workflow.run
    async def run(self, payload: str) -> str:
        for _ in range(2):
            payload = await workflow.execute_activity(
                bench_step, payload, start_to_close_timeout=timedelta(seconds=30)
            )
        return payload
