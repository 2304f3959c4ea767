"""What a worker exposes for operators, built once from settings: Prometheus metrics
(METRICS_HOST:METRICS_PORT), /healthz (HEALTH_HOST:HEALTH_PORT) and optional OpenTelemetry
tracing (OTEL_TRACING)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime
from temporalio.worker import Interceptor, Worker

from shards.engine.runner import ConflictRetry
from shards.router import ShardRouter
from transfers.ops.health import HealthProbe
from transfers.ops.health_server import serve_health
from transfers.ops.metrics import counted_conflict_retry, prometheus_runtime
from transfers.ops.tracing import TracingUnavailable, tracing_interceptors
from transfers.settings import Settings


class ObservabilityError(Exception):
    """An endpoint cannot listen on its port, or tracing lacks its packages."""


@dataclass(frozen=True)
class Observability:
    """The runtime that exports metrics (None: metrics off), tracing interceptors, /healthz."""

    runtime: Runtime | None
    interceptors: list[Interceptor]
    health_host: str
    health_port: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Observability:
        address = socket_address(settings.metrics_host, settings.metrics_port)
        try:
            interceptors = tracing_interceptors(settings)
            runtime = prometheus_runtime(address) if settings.metrics_port else None
        except TracingUnavailable as error:
            raise ObservabilityError(str(error)) from None
        except ValueError as error:  # the SDK's "Failed starting Prometheus exporter: ..."
            raise ObservabilityError(f"METRICS_HOST:METRICS_PORT {address}: {error}") from None
        return cls(runtime, interceptors, str(settings.health_host), settings.health_port)

    @property
    def meter(self) -> MetricMeter:
        return MetricMeter.noop if self.runtime is None else self.runtime.metric_meter

    def conflict_retry(self, strategy: str) -> ConflictRetry:
        """The shard runner's retry policy, counting the write conflicts it retries."""
        return counted_conflict_retry(self.meter, strategy)

    @asynccontextmanager
    async def health_endpoint(
        self, worker: Worker, client: Client, router: ShardRouter
    ) -> AsyncIterator[None]:
        """/livez, /readyz and /healthz about `worker` for as long as the context lasts
        (HEALTH_PORT 0: none)."""
        if self.health_port == 0:
            yield
            return
        probe = HealthProbe(worker, client, router)
        try:
            server = await serve_health(
                self.health_host, self.health_port, probe.check, live=probe.liveness
            )
        except OSError as error:
            address = f"{self.health_host} port {self.health_port}"
            raise ObservabilityError(f"HEALTH_HOST/HEALTH_PORT {address}: {error}") from None
        try:
            yield
        finally:
            server.close()
            await server.wait_closed()
            await probe.close()


def socket_address(host: IPv4Address | IPv6Address, port: int) -> str:
    """`host:port`, the IPv6 host in brackets."""
    return f"[{host}]:{port}" if host.version == 6 else f"{host}:{port}"
