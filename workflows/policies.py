"""Named timeouts, retry policies and cancellation types for every call the workflows make."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

from shards.errors import BUSINESS_ERRORS

# One step is one shard transaction, bounded by the shard's lock_timeout (5 s) and
# statement_timeout (15 s); an attempt still running after this is presumed lost with its worker.
STEP_START_TO_CLOSE = timedelta(seconds=30)

# Steps never give up on infrastructure errors: a shard that is down is waited for, and only a
# business refusal (or a cancellation) leads to a compensation.
STEP_SCHEDULE_TO_CLOSE: timedelta | None = None

# How long a step retries as a local activity before it goes on as a regular one, whose retries
# add no events to the history (see workflows.saga_steps.run_step). 5 attempts with the backoff
# below take about 15 s plus the attempts themselves (a LockTimeout is 5 s): a few workflow-task
# heartbeats, 3 events each; the budget caps the time when attempts hang.
LOCAL_STEP_ATTEMPTS = 5
LOCAL_STEP_BUDGET = timedelta(seconds=90)

STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,  # unlimited
    # Activities already raise these as non-retryable; listed again so a step can never loop on one.
    non_retryable_error_types=sorted(BUSINESS_ERRORS),
)


def local_step_retry() -> RetryPolicy:
    """STEP_RETRY, limited to LOCAL_STEP_ATTEMPTS (read when called: tests shorten it)."""
    return dataclasses.replace(STEP_RETRY, maximum_attempts=LOCAL_STEP_ATTEMPTS)


# The debit may be abandoned when the transfer is cancelled: the refund that follows writes a
# marker on the source's shard that refuses a debit arriving late.
ABANDON_ON_CANCEL = ActivityCancellationType.TRY_CANCEL

# Nothing can refuse a late credit (or a late same-shard transfer), so cancelling one waits for
# its running attempt to end: the workflow then knows whether it committed.
WAIT_ON_CANCEL = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED

# The route is pure computation on the worker (a hash of the account id).
ROUTE_START_TO_CLOSE = timedelta(seconds=5)
ROUTE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,  # unlimited
    non_retryable_error_types=sorted(BUSINESS_ERRORS),
)

# A batched step (workflows/batch.py) is one transaction per shard for up to MAX_BATCH_SIZE
# transfers: each statement is still bounded by the shard's statement_timeout (15 s), but a shard
# runs a few of them (locks, entries, balances), so an attempt gets twice a single step's time.
BATCH_STEP_START_TO_CLOSE = timedelta(seconds=60)

# A batch's refund refused for a business reason (the single saga waits for an operator's Update)
# is tried again after this, for ever, with the batch's `RefundStuck` search attribute set: its
# cause (an account closed by hand, ...) is fixed on the shard, then the refund goes through.
BATCH_REFUND_RETRY_INTERVAL = timedelta(minutes=1)
