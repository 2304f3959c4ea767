"""The fault schedule: the same seed draws the same faults, and a short run has every kind."""

from __future__ import annotations

import pytest

from transfers.devtools.chaos.schedule import (
    CRASH_LEAD_S,
    CRASH_STEPS,
    MIN_DURATION_S,
    RECOVERY_S,
    STEP_TIMEOUT_S,
    FaultKind,
    build_schedule,
)


def test_the_same_seed_draws_the_same_schedule() -> None:
    assert build_schedule(7, 300, 3) == build_schedule(7, 300, 3)
    assert build_schedule(7, 300, 3) != build_schedule(8, 300, 3)


@pytest.mark.parametrize("seed", range(20))
def test_the_shortest_run_has_every_kind_of_fault(seed: int) -> None:
    schedule = build_schedule(seed, MIN_DURATION_S, 3)

    assert sorted(fault.kind for fault in schedule) == sorted(FaultKind)


@pytest.mark.parametrize("seed", range(20))
def test_faults_leave_time_to_recover_and_never_hit_a_paused_shard(seed: int) -> None:
    duration_s = 300.0
    schedule = build_schedule(seed, duration_s, 3)
    pauses = [fault for fault in schedule if fault.kind == FaultKind.SHARD_PAUSE]

    assert all(pause.hold_s > STEP_TIMEOUT_S for pause in pauses)
    assert all(fault.at_s + fault.hold_s <= duration_s - RECOVERY_S for fault in schedule)
    on_shards = (FaultKind.SHARD_RESTART, FaultKind.FREEZE_FLIP)
    for fault in (fault for fault in schedule if fault.kind in on_shards):
        overlapping = [p for p in pauses if p.at_s <= fault.at_s <= p.at_s + p.hold_s]
        assert fault.shard not in {pause.shard for pause in overlapping}


@pytest.mark.parametrize("seed", range(20))
def test_a_crash_worker_starts_before_its_rounds_pause(seed: int) -> None:
    schedule = build_schedule(seed, 300.0, 3)
    crashes = [fault for fault in schedule if fault.kind == FaultKind.KILL_AFTER_COMMIT]
    pauses = [fault for fault in schedule if fault.kind == FaultKind.SHARD_PAUSE]

    assert crashes
    assert all(crash.step in CRASH_STEPS for crash in crashes)
    for crash in crashes:
        next_pause = min((p.at_s for p in pauses if p.at_s > crash.at_s), default=300.0)
        assert next_pause - crash.at_s >= CRASH_LEAD_S - 0.5


def test_a_run_too_short_or_on_one_shard_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 75s"):
        build_schedule(1, MIN_DURATION_S - 1, 3)
    with pytest.raises(ValueError, match="at least 2 shards"):
        build_schedule(1, MIN_DURATION_S, 1)
