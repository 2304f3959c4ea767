"""Determinism: recorded histories of representative transfers replay through today's code.

The histories in tests/histories/ are recorded by the tests that produce them (see
`record_history` in conftest.py). After a deliberate, compatible change to TransferWorkflow or
PendingTransferWorkflow (`pending_*`), re-record them with:

    RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/workflows tests/client/test_operator_api.py

and commit the files. A replay failure without such a change means the change is not
replay-safe for running transfers: guard it with `workflow.patched(...)` instead, and keep the
histories recorded before the patch in a folder of their own, as before-lean-history/ keeps those
of the runs that called their steps as regular activities (the `lean-history` patch) and
before-entries-decide/ those of the runs that made no claim and refunded without a fence (the
`entries-decide` patch).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.batch import TransferBatchWorkflow
from workflows.pending import PendingTransferWorkflow
from workflows.transfer import TransferWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"
REPRESENTATIVE = {
    "completed",
    "failed",
    "compensated",
    "same_shard",
    "cancelled",
    "refund_resolved",
    "invalid_input",
    "pending_posted",
    "pending_voided",
    "pending_expired",
    "pending_compensated",
}
# Since the entries-decide patch: re-runs over the committed effects of a lost task, and new runs
# of an id (the same fields replay the end; other fields are refused).
SINCE_ENTRIES_DECIDE = {
    "lost_debit_cancelled",
    "lost_refund",
    "pending_lost_capture_voided",
    "id_reused_completed",
    "id_reused_compensated",
    "id_reused_failed",
}


# Since the refund-stuck-visible patch: a refund refused, retried and refused again, retried and
# done, the `RefundStuck` search attribute set and unset each time; before-refund-stuck-visible/
# keeps the resolved one recorded without it.
SINCE_REFUND_STUCK_VISIBLE = {"refund_retried"}

# TransferBatchWorkflow (tests/workflows/test_batch*.py): every end in one batch, a batch
# cancelled before its debits, one cancelled while one shard's credits had committed, and one
# cancelled before the claims of its lost task were recorded.
BATCHES = {
    "batch_mixed",
    "batch_cancelled",
    "batch_cancelled_mid_credits",
    "batch_lost_cancelled",
}


# Since the claim-records-ending patch (tests/workflows/test_unknown_account_endings.py): a
# transfer, a pending transfer and a batch transfer FAILED for an unknown source record their end
# on the claim, then settle once more; a new run, single or in a batch, finds it there.
SINCE_CLAIM_RECORDS_ENDING = {
    "ended_on_claim_failed",
    "ended_on_claim_rerun",
    "pending_ended_on_claim",
    "batch_ended_on_claim",
    "batch_ended_on_claim_rerun",
}


# Since the batch-operator-decisions patch (tests/workflows/test_batch_stuck_refund.py and
# test_batch_refund_tried_again.py): a batch's stuck refund resolved by hand while another is
# retried by an operator, and one tried again on its own after a minute;
# before-batch-operator-decisions/ keeps the latter recorded with a plain timer between tries.
SINCE_BATCH_OPERATOR_DECISIONS = {"batch_refund_resolved", "batch_refund_tried_again"}


def test_every_representative_run_is_recorded() -> None:
    assert {path.stem for path in HISTORIES.glob("*.json")} >= (
        REPRESENTATIVE
        | SINCE_ENTRIES_DECIDE
        | SINCE_REFUND_STUCK_VISIBLE
        | BATCHES
        | SINCE_CLAIM_RECORDS_ENDING
        | SINCE_BATCH_OPERATOR_DECISIONS
    )
    assert (HISTORIES / "before-refund-stuck-visible" / "refund_resolved.json").exists()
    before_decisions = HISTORIES / "before-batch-operator-decisions"
    assert (before_decisions / "batch_refund_tried_again.json").exists()
    for before in ("before-lean-history", "before-entries-decide"):
        assert {path.stem for path in (HISTORIES / before).glob("*.json")} >= REPRESENTATIVE


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"transfer-recorded-{path.stem}", path.read_text())


@pytest.mark.parametrize(
    "path",
    sorted(HISTORIES.rglob("*.json")),
    ids=lambda path: str(path.relative_to(HISTORIES).with_suffix("")),
)
async def test_history_replays(path: Path) -> None:
    history = load(path)
    replayer = Replayer(
        workflows=[TransferWorkflow, PendingTransferWorkflow, TransferBatchWorkflow],
        data_converter=pydantic_data_converter,
    )

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert result.replay_failure is None
