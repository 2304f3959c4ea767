"""What a running worker shows operators: /metrics (the SDK's and ours), /healthz, and traces."""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.workers import Accounts
from transfers.client import TransfersClient
from transfers.devtools.embedded_pg import free_port
from transfers.settings import Settings
from worker import run_worker
from workflows.models import TransferRequest, TransferStatus


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def _fetch(port: int, path: str) -> tuple[int, str]:
    return await asyncio.to_thread(_get, port, path)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """`run_worker` in this process until the block ends, then drained like after SIGTERM."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, stop=stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def _until_healthy(port: int, task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(30):
        while True:
            assert not task.done(), task.exception()
            try:
                if (await _fetch(port, "/healthz"))[0] == 200:
                    return
            except OSError:
                pass  # not listening yet
            await asyncio.sleep(0.2)


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in metrics.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{key}="{value}"' in match[1] for key, value in labels.items()):
            total += float(match[2])
    return total


async def test_metrics_and_health_of_a_running_worker(
    settings: Settings, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    metrics_port, health_port = free_port(), free_port()
    observed = settings.model_copy(
        update={"metrics_port": metrics_port, "health_port": health_port}
    )
    source = await accounts.open(1_000, shard=0)
    target, closed = await accounts.open(0, shard=1), await accounts.open(0, shard=2)
    await accounts.close(closed)

    async with running(observed) as task:
        await _until_healthy(health_port, task)
        transfers = await TransfersClient.connect(observed)
        completed = await transfers.submit(request_for(source, target, 100))
        compensated = await transfers.submit(request_for(source, closed, 50))
        status, metrics = await _fetch(metrics_port, "/metrics")
        wrong_path = await _fetch(health_port, "/")
    after_stop = await asyncio.to_thread(_refused, health_port)

    assert (completed.status, compensated.status) == ("COMPLETED", "COMPENSATED")
    assert status == 200
    assert "temporal_workflow_completed" in metrics  # the SDK's own metrics
    queue = {"task_queue": settings.transfers_task_queue}
    assert _sample(metrics, "transfers_started_total", **queue) == 2
    for outcome in (TransferStatus.COMPLETED, TransferStatus.COMPENSATED):
        assert _sample(metrics, "transfers_finished_total", status=outcome, **queue) == 1
    steps = "transfers_step_duration_seconds_count"
    assert _sample(metrics, steps, activity_type="debit", outcome="ok", **queue) == 2
    assert _sample(metrics, steps, activity_type="credit", outcome="AccountNotOpen", **queue) == 1
    assert _sample(metrics, steps, activity_type="refund", outcome="ok", **queue) == 1
    assert wrong_path[0] == 404
    assert after_stop  # the endpoint goes away with the worker


def _refused(port: int) -> bool:
    try:
        _get(port, "/healthz")
    except urllib.error.URLError:
        return True
    return False


async def test_lock_timeouts_are_counted_as_step_retries(
    settings: Settings, accounts: Accounts, request_for: Callable[..., TransferRequest]
) -> None:
    metrics_port = free_port()
    observed = settings.model_copy(update={"metrics_port": metrics_port})
    source, target = await accounts.open(1_000, shard=0), await accounts.open(0, shard=1)

    async with running(observed) as task, accounts.row_locked(target):
        transfers = await TransfersClient.connect(observed)
        await transfers.submit(request_for(source, target, 100), wait=False)
        retries = 0.0
        async with asyncio.timeout(30):
            while not retries:
                assert not task.done(), task.exception()
                await asyncio.sleep(0.5)
                metrics = (await _fetch(metrics_port, "/metrics"))[1]
                retries = _sample(metrics, "transfers_step_retries_total", reason="LockTimeout")

    assert retries >= 1


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """Spans of this process, kept in memory: the tracer provider is set once per process."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


async def test_tracing_records_the_workflow_and_each_step(
    settings: Settings,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    spans: InMemorySpanExporter,
) -> None:
    traced = settings.model_copy(update={"otel_tracing": True})
    source, target = await accounts.open(1_000, shard=0), await accounts.open(0, shard=1)
    request = request_for(source, target, 100)

    async with running(traced):
        outcome = await (await TransfersClient.connect(traced)).submit(request)

    names = {span.name for span in spans.get_finished_spans()}
    assert outcome.status == TransferStatus.COMPLETED
    assert {"RunWorkflow:TransferWorkflow", "RunActivity:debit", "RunActivity:credit"} <= names
