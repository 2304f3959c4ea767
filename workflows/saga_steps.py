"""Plumbing the saga workflows share: awaiting an activity, and work a cancellation cannot stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from shards.errors import (
        BUSINESS_ERRORS,
        Cancelled,
        IdempotencyConflict,
        InvalidInput,
        recorded_error,
    )
    from workflows import policies
    from workflows.models import AppliedEntry, TransferError
    from workflows.readable import Readable

T = TypeVar("T")

CANCELLED = Cancelled.__name__  # the error type of a cancelled transfer, in the shards' tree

LEAN_HISTORY = "lean-history"
"""Patch id. Runs started since this change call their shard steps as local activities and
upsert only the search attributes their start did not set; histories recorded before it replay
the regular activities and the upserts they had."""


def lean_history() -> bool:
    """Whether this run takes the LEAN_HISTORY path: new runs do, a replay as its history says."""
    return workflow.patched(LEAN_HISTORY)


ENTRIES_DECIDE = "entries-decide"
"""Patch id. Runs started since this change claim their transfer id before anything else, end
every transfer that does not complete through the target's shard (fence the credit, then refund
the source) whatever stopped it, carry out the steps an Update asks for as regular activities,
and continue a local step that outlasts `policies.LOCAL_STEP_BUDGET` as a regular activity.
Histories recorded before it replay the decisions they recorded."""


def entries_decide() -> bool:
    """Whether this run takes the ENTRIES_DECIDE path: new runs do, a replay as its history says."""
    return workflow.patched(ENTRIES_DECIDE)


SETTLE_BY_ENTRIES = "settle-by-entries"
"""Patch id, asked only by runs started before ENTRIES_DECIDE, and only where a transfer ends
without completing: from there they end as the entries say too (see LedgerSaga._settle)."""


REFUND_STUCK_VISIBLE = "refund-stuck-visible"
"""Patch id. Runs that reach a stuck refund since this change set the `RefundStuck` search
attribute while it waits for an operator, and unset it once an operator decides; histories
recorded before it replay without those upserts."""


def refund_stuck_visible() -> bool:
    """Whether this run takes REFUND_STUCK_VISIBLE: new runs do, a replay as its history says."""
    return workflow.patched(REFUND_STUCK_VISIBLE)


CLAIM_RECORDS_ENDING = "claim-records-ending"
"""Patch id. Runs that end FAILED since this change, whose source's entries cannot say so (the
refund, or a hold's release, was a marker on an account that did not exist), record the ending on
the transfer id's claim (`end_claim`), then settle once more; a later run of the request finds it
there. Histories recorded before it replay their end without that step."""


def records_ending() -> bool:
    """Whether this run takes CLAIM_RECORDS_ENDING: new runs do, a replay as its history says."""
    return workflow.patched(CLAIM_RECORDS_ENDING)


def ended_before(refusal: TransferError) -> bool:
    """Whether a claim's refusal hands back this request's own earlier end, recorded on its claim
    (its error, e.g. AccountNotFound), rather than refusing the request: another request owns the
    id (IdempotencyConflict), or the id is malformed."""
    error = recorded_error(refusal.type, refusal.message)
    return not isinstance(error, IdempotencyConflict | InvalidInput)


class Refused(Exception):
    """A step was refused for a business reason; that step applied nothing."""

    def __init__(self, error: TransferError) -> None:
        super().__init__(error.message)
        self.error = error


async def call(activity: Awaitable[T], *, attempts_limited: bool = False) -> T:
    """Await an activity; its failure is either a business refusal or a cancellation, or, with
    `attempts_limited` (a local step, see run_step), the end of its attempts: its last error."""
    try:
        return await activity
    except (ActivityError, ApplicationError) as error:
        # A local activity's failure can arrive as the activity's own ApplicationError, and
        # without its non-retryable flag: the business error's type tells.
        cause = error.cause if isinstance(error, ActivityError) else error
        if isinstance(cause, ApplicationError) and (
            cause.type in BUSINESS_ERRORS or (cause.non_retryable and not gave_up(error))
        ):
            refusal = TransferError(type=cause.type or "Refused", message=cause.message)
            raise Refused(refusal) from error
        if is_cancelled_exception(error):
            raise asyncio.CancelledError from error
        if attempts_limited and isinstance(cause, ApplicationError):
            raise  # out of attempts, whether or not the workflow was cancelled meanwhile
        # Other steps retry infrastructure errors forever: any other failure means the attempt
        # was stopped by a cancellation of the workflow.
        if workflow.cancellation_reason() is not None:
            raise asyncio.CancelledError from error
        raise


def gave_up(error: BaseException) -> bool:
    """The activity failed its last attempt (or its schedule-to-close), maybe on an error that
    is not retryable but not a refusal either: only local steps, whose attempts are limited."""
    return isinstance(error, ActivityError) and error.retry_state in (
        RetryState.MAXIMUM_ATTEMPTS_REACHED,
        RetryState.TIMEOUT,
    )


async def run_step(
    step: Callable[..., Awaitable[T]],
    argument: object,
    *,
    summary: str,
    cancellation: workflow.ActivityCancellationType = policies.ABANDON_ON_CANCEL,
    durable: bool = False,
    start_to_close: timedelta = policies.STEP_START_TO_CLOSE,
) -> T:
    """One shard step: retried until done, refused (`Refused`) or cancelled.

    A step is a local activity: it runs on the worker that runs the workflow, inside the same
    workflow task, so a transfer costs Temporal one workflow task instead of one per step. A step
    is idempotent in its shard, so the at-least-once of either kind of activity applies it once.
    What it gives away is visibility: a step being retried is not a pending activity in the Web
    UI (the workflow's current details say which step runs) and its attempts are recorded only
    when it ends.

    Its commit is not in the history until the workflow task completes: a re-run after a lost
    task decides again from the shard's entries. Two kinds of step are regular activities
    instead. `durable`: a step that an Update asked for (post, void, retry_compensation), whose
    acceptance is then recorded with the step's scheduling, before the step can change a shard.
    A local step still failing after LOCAL_STEP_ATTEMPTS attempts or LOCAL_STEP_BUDGET (a shard
    down) goes on as a regular activity: a local activity keeps its workflow task alive with a
    heartbeat that adds events to the history, a regular one retries on the server with none,
    so the events a step adds stay bounded however long the outage. `start_to_close` bounds one
    attempt (a batched step gets longer).
    """
    options: dict[str, Any] = {
        "start_to_close_timeout": start_to_close,
        "retry_policy": policies.STEP_RETRY,
        "cancellation_type": cancellation,
        "summary": Readable(summary),  # left in clear by the payload codec
    }
    if not lean_history():  # runs recorded before the lean-history patch
        return await call(_regular(step, argument, options))
    if not entries_decide():
        return await call(
            workflow.execute_local_activity(
                step,
                args=[argument],
                schedule_to_close_timeout=policies.STEP_SCHEDULE_TO_CLOSE,
                **options,
            )
        )
    if durable:
        return await call(_regular(step, argument, options))
    try:
        return await call(
            workflow.execute_local_activity(
                step,
                args=[argument],
                schedule_to_close_timeout=policies.LOCAL_STEP_BUDGET,
                **options | {"retry_policy": policies.local_step_retry()},
            ),
            attempts_limited=True,
        )
    except (ActivityError, ApplicationError):  # neither refused nor cancelled: out of attempts
        workflow.logger.warning("%s: still failing, retried as a regular activity", summary)
    return await call(_regular(step, argument, options))


def _regular(
    step: Callable[..., Awaitable[T]], argument: object, options: dict[str, Any]
) -> Awaitable[T]:
    return workflow.execute_activity(
        step,
        args=[argument],
        schedule_to_close_timeout=policies.STEP_SCHEDULE_TO_CLOSE,
        **options,
    )


async def shielded(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` to its end even if the workflow is cancelled while it runs."""
    task = asyncio.create_task(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                return task.result()


def record_once(entries: list[AppliedEntry], entry: AppliedEntry) -> None:
    """Append `entry` unless it is the last one recorded: a transfer settled again (after its
    claim recorded its end) finds the same refund or release a second time."""
    if not (entries and entries[-1].same_entry(entry)):
        entries.append(entry)


def cancelled(when: str) -> TransferError:
    """The error of a transfer cancelled `when` (e.g. 'before its first step was recorded')."""
    return TransferError(type=CANCELLED, message=f"transfer cancelled {when}")
