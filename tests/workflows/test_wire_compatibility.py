"""Step results stay readable by the workers of the release before, which share the task queue
during a rolling deploy: a result they cannot decode fails the whole transfer after money moved
(found by review: the old worker ended a captured transfer FAILED)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from workflows.models import AppliedEntry, TransferOutcome, TransferStatus, TransferStep

REPOSITORY = Path(__file__).resolve().parents[2]
PREVIOUS_RELEASE = "aa61ea2"  # the last commit before balances left the step results


def test_a_step_result_carries_no_balance_and_decodes_in_the_previous_release(
    tmp_path: Path,
) -> None:
    entry = AppliedEntry(kind="capture", account_id="acc-1", amount=400)
    wire = entry.model_dump_json()
    assert AppliedEntry.model_validate_json(wire) == entry
    recorded = AppliedEntry.model_validate({**entry.model_dump(), "balance_after": 5_000})
    assert recorded.balance_after == 0  # a balance recorded before is not passed on

    models = subprocess.run(
        ["git", "show", f"{PREVIOUS_RELEASE}:workflows/models.py"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (tmp_path / "previous_models.py").write_text(models)
    decode = (
        "import sys; from previous_models import AppliedEntry; "
        "print(AppliedEntry.model_validate_json(sys.argv[1]))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", decode, wire],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{REPOSITORY}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "balance_after=0" in completed.stdout


def test_the_step_names_in_the_json_contract_keep_their_values() -> None:
    assert {step.value for step in TransferStep} == {
        *("started", "routing", "debiting", "debit-refused", "transferring"),
        *("holding", "hold-refused", "held", "capturing", "capture-refused", "releasing"),
        *("voided", "expired", "crediting", "completed", "refused", "cancelled"),
        *("settling-credit", "refunding", "refund-stuck", "resolving", "resolved-by-operator"),
        "refunded",
    }
    outcome = TransferOutcome(
        transfer_id="t-1", status=TransferStatus.COMPENSATING, step=TransferStep.REFUND_STUCK
    )
    assert '"step":"refund-stuck"' in outcome.model_dump_json()
    assert TransferOutcome.model_validate_json(outcome.model_dump_json()).step == "refund-stuck"
