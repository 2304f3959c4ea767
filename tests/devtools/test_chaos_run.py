"""A short `transfers chaos` run, as CI runs it: every kind of fault injected, every transfer
final (batches' included), not one violation. About 100 s of wall time (start-up, 80 s of
traffic, checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from transfers.devtools.chaos.schedule import FaultKind, build_schedule
from workflows.models import FINAL_STATUSES

# Its crash worker dies after a batch's debit commits: the batch re-run from a history without the
# step must decide what the lost run decided, for each of its transfers.
SEED = 29
DURATION_S = 80  # with start-up and checks, the run stays well under 2 minutes


@pytest.mark.timeout(300)
def test_a_short_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "transfers.cli", "chaos", "--json", "--seed", str(SEED)]
    data_dir = ("--data-dir", str(tmp_path / "stack"))
    completed = subprocess.run(
        [*command, "--duration", f"{DURATION_S}s", *data_dir],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    assert "Traceback" not in completed.stderr, completed.stderr
    report = json.loads(completed.stdout)
    assert report["violations"] == 0, report["violation_details"]
    assert completed.returncode == 0
    assert report["transfers"]["unfinished"] == 0
    # every kind of fault took effect once: a crash worker died (70) after its step's commit,
    # transfers were cancelled, accounts frozen, an ended id run again with other fields
    assert report["faults"] == {kind.value: 1 for kind in FaultKind}, report["fault_log"]
    duplicates = report["duplicates"]
    assert duplicates["joined"] > 0
    assert duplicates["refused"] > 0
    assert duplicates["unanswered"] == 0
    assert set(report["transfers"]["by_status"]) == set(FINAL_STATUSES)
    # batches ran beside: each of their transfers counted, final, and checked as a single one
    # (the checks above); refusals and refunds inside a batch, and resubmissions joined
    batches = report["batches"]
    assert batches["submitted"] > 0
    assert batches["unfinished"] == 0
    assert sum(batches["by_status"].values()) == batches["transfers"] > batches["submitted"]
    assert {"COMPLETED", "FAILED", "COMPENSATED"} <= set(batches["by_status"])
    assert duplicates["batches_joined"] > 0
    assert duplicates["batches_refused"] > 0
    assert report["checks"]["batch"] == 0
    planned = [fault.as_json() for fault in build_schedule(SEED, DURATION_S, 3)]
    assert report["schedule"] == planned
