"""Optional OpenTelemetry tracing (OTEL_TRACING=true, `pip install 'transfers[otel]'`).

The worker's spans: one for each workflow run and each ledger step; a caller that traces its
own start of a transfer (the Python API with the SDK's TracingInterceptor on its client) gets
them under its span. Spans go to the OTLP/HTTP collector that the standard OTEL_EXPORTER_OTLP_*
variables name (default http://localhost:4318), unless the process set a tracer provider first.
"""

from __future__ import annotations

from temporalio.worker import Interceptor

from transfers.settings import Settings

SERVICE_NAME = "transfers"


class TracingUnavailable(Exception):
    """OTEL_TRACING=true without the OpenTelemetry packages."""


def tracing_interceptors(settings: Settings) -> list[Interceptor]:
    """The SDK's tracing interceptor when OTEL_TRACING is on; nothing otherwise."""
    if not settings.otel_tracing:
        return []
    try:
        from opentelemetry import trace
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError:
        raise TracingUnavailable(
            "OTEL_TRACING=true needs OpenTelemetry: pip install 'transfers[otel]'"
        ) from None
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):  # none installed yet
        _export_over_otlp()
    # Workflow spans even without a client span to hang from: `transfers submit` traces nothing.
    return [TracingInterceptor(always_create_workflow_spans=True)]


def _export_over_otlp() -> None:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
