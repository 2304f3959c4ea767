"""Plumbing the saga workflows share: awaiting an activity, and work a cancellation cannot stop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from workflows.models import TransferError

T = TypeVar("T")

CANCELLED = "Cancelled"


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
