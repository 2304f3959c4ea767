"""What a worker exposes for operators, built once from settings: Prometheus metrics
(METRICS_PORT), /healthz (HEALTH_PORT) and optional OpenTelemetry tracing (OTEL_TRACING)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime
from temporalio.worker import Interceptor, Worker

from shards.router import ShardRouter
from shards.runner import RetryPolicy
from transfers.health import WorkerHealth, serve_health
from transfers.metrics import counted_retry_policy, prometheus_runtime
from transfers.settings import Settings
from transfers.tracing import TracingUnavailable, tracing_interceptors


class ObservabilityError(Exception):
    """An endpoint cannot listen on its port, or tracing lacks its packages."""


@dataclass(frozen=True)
class Observability:
    """The runtime that exports metrics (None: metrics off), tracing interceptors, /healthz."""

    runtime: Runtime | None
    interceptors: list[Interceptor]
    health_port: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Observability:
        try:
            interceptors = tracing_interceptors(settings)
            port = settings.metrics_port
            runtime = prometheus_runtime(port) if port else None
        except TracingUnavailable as error:
            raise ObservabilityError(str(error)) from None
        except ValueError as error:  # the SDK's "Failed starting Prometheus exporter: ..."
            raise ObservabilityError(f"METRICS_PORT {port}: {error}") from None
        return cls(runtime, interceptors, settings.health_port)

    @property
    def meter(self) -> MetricMeter:
        return MetricMeter.noop if self.runtime is None else self.runtime.metric_meter

    def retry_policy(self, strategy: str) -> RetryPolicy:
        """The shard runner's retry policy, counting the write conflicts it retries."""
        return counted_retry_policy(self.meter, strategy)

    @asynccontextmanager
    async def health_endpoint(
        self, worker: Worker, client: Client, router: ShardRouter
    ) -> AsyncIterator[None]:
        """/healthz about `worker` for as long as the context lasts (HEALTH_PORT 0: none)."""
        if self.health_port == 0:
            yield
            return
        check = WorkerHealth(worker, client, router).problems
        try:
            server = await serve_health(self.health_port, check)
        except OSError as error:
            raise ObservabilityError(f"HEALTH_PORT {self.health_port}: {error}") from None
        try:
            yield
        finally:
            server.close()
            await server.wait_closed()
