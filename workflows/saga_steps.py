"""Plumbing the saga workflows share: awaiting an activity, and work a cancellation cannot stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from workflows import policies
    from workflows.models import TransferError

T = TypeVar("T")

CANCELLED = "Cancelled"

LOCAL_STEPS = "local-steps"
"""Patch id: runs started since this change call their shard steps as local activities; the
histories recorded before it replay the regular activities they scheduled."""


class Refused(Exception):
    """A step was refused for a business reason; that step applied nothing."""

    def __init__(self, error: TransferError) -> None:
        super().__init__(error.message)
        self.error = error


async def call(activity: Coroutine[Any, Any, T]) -> T:
    """Await an activity; its failure is either a business refusal or a cancellation."""
    try:
        return await activity
    except ActivityError as error:
        cause = error.cause
        if isinstance(cause, ApplicationError) and cause.non_retryable:
            refusal = TransferError(type=cause.type or "Refused", message=cause.message)
            raise Refused(refusal) from error
        # Steps retry infrastructure errors forever: any other failure means the attempt
        # was stopped by a cancellation of the workflow.
        if is_cancelled_exception(error) or workflow.cancellation_reason() is not None:
            raise asyncio.CancelledError from error
        raise


async def run_step(
    step: Callable[..., Awaitable[T]],
    argument: object,
    *,
    summary: str,
    cancellation: workflow.ActivityCancellationType = policies.ABANDON_ON_CANCEL,
) -> T:
    """One shard step: retried until done, refused (`Refused`) or cancelled.

    A step is a local activity: it runs on the worker that runs the workflow, inside the same
    workflow task, so a transfer costs Temporal one workflow task instead of one per step. A step
    is idempotent in its shard, so the at-least-once of either kind of activity applies it once.
    What it gives away is visibility: a step being retried is not a pending activity in the Web
    UI (the workflow's current details say which step runs) and its attempts are recorded only
    when it ends.
    """
    if workflow.patched(LOCAL_STEPS):
        return await call(
            workflow.execute_local_activity(
                step,
                args=[argument],
                start_to_close_timeout=policies.STEP_START_TO_CLOSE,
                schedule_to_close_timeout=policies.STEP_SCHEDULE_TO_CLOSE,
                retry_policy=policies.STEP_RETRY,
                cancellation_type=cancellation,
                summary=summary,
            )
        )
    return await call(
        workflow.execute_activity(
            step,
            args=[argument],
            start_to_close_timeout=policies.STEP_START_TO_CLOSE,
            schedule_to_close_timeout=policies.STEP_SCHEDULE_TO_CLOSE,
            retry_policy=policies.STEP_RETRY,
            cancellation_type=cancellation,
            summary=summary,
        )
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


def cancelled(when: str) -> TransferError:
    return TransferError(type=CANCELLED, message=f"transfer cancelled {when}")
