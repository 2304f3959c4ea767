"""The worker process and composition root: settings -> shards -> ledger -> activities -> Worker.

Run it as `python worker.py`, `python -m worker` or `transfers worker`. Settings come from the
environment or `.env` (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TRANSFERS_TASK_QUEUE, SHARD_DSNS,
LOCK_STRATEGY, MAX_CONCURRENT_ACTIVITIES, WORKFLOW_SANDBOX, ...), else from a running dev stack's
stack.json.
Exit codes: 0 after a clean shutdown (SIGTERM or Ctrl-C), 1 when Temporal or a shard stays
unreachable at start-up, 2 for unusable settings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Interceptor, Worker

from activities.batch import BatchActivities
from activities.ledger import LedgerActivities
from shards.errors import InfrastructureError, StackFileError
from shards.ledger import Ledger
from shards.router import ShardRouter
from shards.shard import Shard
from transfers.ops.health import ping_shard
from transfers.ops.metrics import TransferMetrics
from transfers.ops.observability import Observability, ObservabilityError
from transfers.ops.tuned_worker import run_until, tuned_worker
from transfers.settings import Settings, load_settings, settings_problem
from transfers.temporal_connection import connect_temporal
from workflows.batch import TransferBatchWorkflow
from workflows.pending import PendingTransferWorkflow
from workflows.transfer import TransferWorkflow

log = logging.getLogger("transfers.worker")

EXIT_UNREACHABLE = 1
EXIT_BAD_SETTINGS = 2
PING_INTERVAL_S = 0.5


class StartupError(Exception):
    """The worker cannot start: unusable settings, or a dependency that stayed unreachable."""

    def __init__(self, message: str, exit_code: int = EXIT_UNREACHABLE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_worker(
    client: Client,
    settings: Settings,
    activities: LedgerActivities,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """The Temporal worker for transfers: the transfer workflows, the ledger activities (single
    and batched), our metrics, and any other `interceptors` (tracing)."""
    batch = (
        activities
        if isinstance(activities, BatchActivities)
        else BatchActivities(activities.ledger)
    )
    return tuned_worker(
        client,
        settings,
        workflows=[TransferWorkflow, PendingTransferWorkflow, TransferBatchWorkflow],
        activities=[
            activities.claim,
            activities.end_claim,
            activities.route,
            activities.debit,
            activities.credit,
            activities.fence_credit,
            activities.refund,
            activities.settled_by_hand,
            activities.transfer_within_shard,
            activities.hold,
            activities.post,
            activities.void,
            batch.claim_batch,
            batch.end_claim_batch,
            batch.debit_batch,
            batch.credit_batch,
            batch.fence_credit_batch,
            batch.refund_batch,
        ],
        interceptors=[TransferMetrics(), *interceptors],
    )


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Wait for Temporal and every shard, then run until `stop` is set (or forever).

    On stop, polling ends and running activities finish before this returns.
    Raises StartupError when a dependency stays unreachable for `startup_timeout_s`.
    """
    try:
        router = ShardRouter.from_dsns(settings.dsn_list(), settings.pool())
        observability = Observability.from_settings(settings)
    except (ValueError, ObservabilityError) as error:  # SHARD_DSNS unusable, a port taken, ...
        raise StartupError(str(error), EXIT_BAD_SETTINGS) from None
    try:
        client = await _wait_for_dependencies(settings, router, observability.runtime)
        retry = observability.conflict_retry(settings.lock_strategy)
        activities = LedgerActivities(Ledger(router, settings.lock_strategy, retry))
        worker = build_worker(client, settings, activities, observability.interceptors)
        async with observability.health_endpoint(worker, client, router):
            log.info(
                "worker polling task queue %s on %s (%d shards, %s locking)",
                settings.transfers_task_queue,
                settings.temporal_address,
                len(router.shards),
                settings.lock_strategy,
            )
            await run_until(worker, stop or asyncio.Event())
    except ObservabilityError as error:  # HEALTH_PORT taken
        raise StartupError(str(error), EXIT_BAD_SETTINGS) from None
    finally:
        await router.dispose()


async def _wait_for_dependencies(
    settings: Settings, router: ShardRouter, runtime: Runtime | None
) -> Client:
    """Temporal and all shards, checked side by side within one bounded wait."""
    wait_s = settings.startup_timeout_s
    temporal, *shards = await asyncio.gather(
        connect_temporal(settings, wait_s=wait_s, runtime=runtime),
        *(_wait_for_shard(shard, wait_s) for shard in router.shards),
        return_exceptions=True,
    )
    problems = [str(check) for check in (temporal, *shards) if isinstance(check, BaseException)]
    if problems or not isinstance(temporal, Client):
        raise StartupError("; ".join(problems))
    return temporal


async def _wait_for_shard(shard: Shard, wait_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        try:
            async with asyncio.timeout(max(deadline - loop.time(), PING_INTERVAL_S)):
                await ping_shard(shard)
            return
        except (InfrastructureError, TimeoutError) as error:
            if loop.time() + PING_INTERVAL_S >= deadline:
                reason = str(error).splitlines()[0] if str(error) else "no answer"
                raise StartupError(
                    f"{shard.name} at {shard.redacted_dsn} is unreachable "
                    f"(waited {wait_s:g}s): {reason}"
                ) from None
            await asyncio.sleep(PING_INTERVAL_S)


def serve(settings: Settings) -> int:
    """Run the worker until SIGTERM or SIGINT; the process exit code."""

    async def until_signalled() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_worker(settings, stop=stop)

    try:
        asyncio.run(until_signalled())
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main() -> None:
    configure_logging()
    try:
        settings = load_settings()
    except ValidationError as error:
        print(f"error: {settings_problem(error)}", file=sys.stderr)
        sys.exit(EXIT_BAD_SETTINGS)
    except StackFileError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_SETTINGS)
    exit_code = serve(settings)
    # Not sys.exit: the Temporal SDK's native threads can crash the interpreter's finalization
    # (exit code 134 instead of ours), as transfers.cli.common.exits_without_teardown says.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


if __name__ == "__main__":
    main()
