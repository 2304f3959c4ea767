"""The worker's Prometheus metrics: the SDK's own (`temporal_*`) and ours (`transfers_*`).

All of them go through the Temporal runtime's meter, so one endpoint serves both, and the
workflow-side counters are replay safe (the SDK skips them while a history is replayed):

    transfers_started_total{workflow_type}              a transfer workflow began
    transfers_finished_total{workflow_type, status}     it ended COMPLETED, FAILED, COMPENSATED,
                                                        VOIDED or EXPIRED
    transfers_step_duration_seconds{activity_type, outcome}
                                                        one ledger step attempt, row-lock waits
                                                        included; outcome `ok` or the error type
    transfers_step_retries_total{activity_type, reason} attempts that failed for a retryable
                                                        reason: LockTimeout (a row lock not
                                                        granted in time), VersionConflict, ...
    transfers_write_conflicts_total{strategy}           writes retried inside a step: a lost
                                                        compare-and-set (optimistic locking) or
                                                        a concurrent insert of the same entry
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import MetricCounter, MetricMeter
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from shards.engine.runner import ConflictRetry

STARTED = "transfers_started"
FINISHED = "transfers_finished"
STEP_DURATION = "transfers_step_duration_seconds"
STEP_RETRIES = "transfers_step_retries"
WRITE_CONFLICTS = "transfers_write_conflicts"
# A step is a millisecond transaction unless it waits on a row lock (seconds, up to lock_timeout).
STEP_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def prometheus_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime that serves every metric at http://<bind_address>/metrics."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                counters_total_suffix=True,
                durations_as_seconds=True,
                histogram_bucket_overrides={STEP_DURATION: STEP_BUCKETS_S},
            )
        )
    )


class TransferMetrics(Interceptor):
    """Counts transfers by outcome and times ledger steps, on the worker that runs them."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _StepTimer(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _TransferCounter


class _StepTimer(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        started = time.monotonic()
        outcome = "ok"
        try:
            return await super().execute_activity(input)
        except ApplicationError as error:
            outcome = error.type or "ApplicationError"
            if not error.non_retryable:
                _count(activity.metric_meter(), STEP_RETRIES, reason=outcome)
            raise
        except BaseException as error:  # cancelled, or a bug: retried by its policy too
            outcome = type(error).__name__
            raise
        finally:
            duration = activity.metric_meter().create_histogram_timedelta(
                STEP_DURATION, "One ledger step attempt, row-lock waits included"
            )
            elapsed = timedelta(seconds=time.monotonic() - started)
            duration.with_additional_attributes({"outcome": outcome}).record(elapsed)


class _TransferCounter(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        meter = workflow.metric_meter()
        _count(meter, STARTED)
        result = await super().execute_workflow(input)
        status = getattr(result, "status", None)  # every transfer workflow returns an outcome
        if status is not None:
            _count(meter, FINISHED, status=str(status))
        return result


def _count(meter: MetricMeter, name: str, **attributes: str) -> None:
    meter.create_counter(name).with_additional_attributes(attributes).add(1)


@dataclass(frozen=True)
class CountedConflictRetry(ConflictRetry):
    """The shard runner's retry policy; every backoff it computes is one retried write."""

    conflicts: MetricCounter | None = field(default=None, compare=False)

    def backoff_s(self, attempt: int) -> float:
        if self.conflicts is not None:
            self.conflicts.add(1)
        return super().backoff_s(attempt)


def counted_conflict_retry(meter: MetricMeter, strategy: str) -> CountedConflictRetry:
    counter = meter.create_counter(WRITE_CONFLICTS, "Contended writes retried inside a step")
    return CountedConflictRetry(
        conflicts=counter.with_additional_attributes({"strategy": strategy})
    )
