"""A short `transfers chaos` run, as CI runs it: every kind of fault injected, every transfer
final, not one violation. About 100 s of wall time (start-up, 80 s of traffic, checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from transfers.devtools.chaos.schedule import FaultKind, build_schedule
from workflows.models import FINAL_STATUSES

SEED = 20
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
    planned = [fault.as_json() for fault in build_schedule(SEED, DURATION_S, 3)]
    assert report["schedule"] == planned
