"""An operator's decisions about a stuck refund, shared by the single and the batch sagas."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import TransferError


@dataclass(frozen=True)
class OperatorDecision:
    """What an operator said about a stuck refund: try again, or it was settled by hand."""

    resolved: bool
    note: str = ""


def resolved_by_operator(
    note: str, reason: TransferError | None, *, refused: TransferError | None
) -> TransferError:
    """The final error of a refund that an operator settled by hand: their note comes first."""
    message = note
    if refused is not None:
        message += f" (the refund was refused: {refused.type})"
    if reason is not None:
        message += f"; compensating for {reason.type}: {reason.message}"
    return TransferError(type="ResolvedByOperator", message=message)


BATCH_OPERATOR_DECISIONS = "batch-operator-decisions"
"""Patch id. Batches whose refunds get stuck since this change take the Updates
`retry_compensation(transfer_id)` (try it now) and `resolve_compensation(transfer_id, note)`
(settled by hand: a refund marker on the source, the transfer ends COMPENSATED) while they wait
between tries; histories recorded before it replay their plain timer between tries."""


def batch_takes_decisions() -> bool:
    """Whether this batch takes BATCH_OPERATOR_DECISIONS: new runs do, a replay as recorded."""
    return workflow.patched(BATCH_OPERATOR_DECISIONS)
