"""The faults of a chaos run, drawn up front from `random.Random(seed)`: the same seed gives the
same faults, on the same targets, at the same offsets (the traffic around them still varies).

A run is split into rounds. Each round pauses one shard for longer than a step's start-to-close
timeout while the faults on processes happen one after another beside it, on the other shards,
and the faults on traffic (cancellations, frozen accounts, reused ids) each at its own time; the
first round has every kind, later ones a seeded subset. A round's crash-after-commit worker starts
just before its pause, since a worker cannot start while a shard is paused. After the last round,
traffic keeps running for `RECOVERY_S`: activity attempts lost with a killed worker are only
retried once their start-to-close timeout has passed.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from workflows.policies import STEP_START_TO_CLOSE

T = TypeVar("T")

STEP_TIMEOUT_S = STEP_START_TO_CLOSE.total_seconds()
WARMUP_S = 3.0  # traffic before the first fault
ROUND_S = 42.0
PAUSE_S = STEP_TIMEOUT_S + 5  # a paused shard outlives the attempts that were running on it
RECOVERY_S = STEP_TIMEOUT_S
MIN_DURATION_S = WARMUP_S + ROUND_S + RECOVERY_S
LATER_ROUND_ODDS = 0.6  # each kind's chance to be in a round after the first
CRASH_LEAD_S = 5.0  # the crash worker's head start on the pause: enough to start up
FREEZE_S = (1.0, 4.0)
# The steps whose first commit a crash worker dies after (TRANSFERS_CRASH_AFTER_COMMIT, read by
# activities/ledger.py). Traffic commits each of them within seconds: every saga claims its id,
# every end but a completion fences the credit and refunds.
CRASH_STEPS = (
    "claim",
    "debit",
    "credit",
    "refund",
    "fence_credit",
    "transfer_within_shard",
    "hold",
    "capture",
    "release",
    # a batch's steps: every batch claims and debits, and nearly every one refunds a refusal
    "claim_batch",
    "debit_batch",
    "credit_batch",
    "fence_credit_batch",
    "refund_batch",
)


class FaultKind(enum.StrEnum):
    WORKER_KILL = "worker_kill"  # SIGKILL the worker, then start a new one
    SHARD_RESTART = "shard_restart"  # stop one shard's PostgreSQL as a crash would, start it again
    TEMPORAL_RESTART = "temporal_restart"  # stop the dev server; same port, same SQLite file
    SHARD_PAUSE = "shard_pause"  # SIGSTOP a shard's processes for PAUSE_S, then SIGCONT
    DUPLICATE_BURST = "duplicate_burst"  # resubmit ids in flight, some with other fields
    KILL_AFTER_COMMIT = "kill_after_commit"  # a second worker exits right after a step's commit
    CANCEL = "cancel"  # cancel transfers in flight, single and pending ones
    FREEZE_FLIP = "freeze_flip"  # freeze accounts in use for FREEZE_S, then unfreeze them
    SAME_ID_OTHER_FIELDS = "same_id_other_fields"  # a new run of an ended id, other fields


# Faults on processes take turns; the others (a pause, traffic, a second worker) run beside them.
IN_TURN = (
    FaultKind.WORKER_KILL,
    FaultKind.SHARD_RESTART,
    FaultKind.TEMPORAL_RESTART,
    FaultKind.DUPLICATE_BURST,
)
ON_TRAFFIC = (FaultKind.CANCEL, FaultKind.FREEZE_FLIP, FaultKind.SAME_ID_OTHER_FIELDS)


# What a fault costs beyond its hold_s before the next one may start: a worker's start-up, a
# server's. The injector waits for a fault to finish anyway; these only space out the plan.
RECOVERY_ESTIMATE_S = {
    FaultKind.WORKER_KILL: 5.0,
    FaultKind.SHARD_RESTART: 2.0,
    FaultKind.TEMPORAL_RESTART: 6.0,
    FaultKind.DUPLICATE_BURST: 2.0,
}


@dataclass(frozen=True)
class Fault:
    """One planned fault: `at_s` after traffic starts, lasting `hold_s` (down time, pause,
    freeze); `step` is the one a crash-after-commit worker dies after."""

    at_s: float
    kind: FaultKind
    hold_s: float = 0.0
    shard: int | None = None
    step: str | None = None

    def describe(self) -> str:
        target = "" if self.shard is None else f" shard {self.shard}"
        step = "" if self.step is None else f" {self.step}"
        lasting = f" for {self.hold_s:.1f}s" if self.hold_s else ""
        return f"t+{self.at_s:.1f}s {self.kind}{step}{target}{lasting}"

    def as_json(self) -> dict[str, Any]:
        return {
            "at_s": round(self.at_s, 1),
            "kind": self.kind.value,
            "hold_s": round(self.hold_s, 1),
            "shard": self.shard,
            "step": self.step,
        }


def seeded_random(seed: int, stream: str) -> random.Random:
    """The run's random stream for one purpose (faults, traffic, ...): the same for a seed."""
    return random.Random(f"{seed}/{stream}")  # noqa: S311 (reproducible on purpose, no secret)


def sample_up_to(rng: random.Random, items: Sequence[T], size: int) -> list[T]:
    """`size` of `items` drawn at random, or all of them when there are fewer."""
    return rng.sample(list(items), min(size, len(items)))


def build_schedule(seed: int, duration_s: float, shard_count: int) -> list[Fault]:
    """Every fault of a run of `duration_s` seconds over `shard_count` (at least 2) shards."""
    if duration_s < MIN_DURATION_S:
        raise ValueError(
            f"a chaos run needs at least {MIN_DURATION_S:.0f}s for every kind of fault "
            f"and the recovery after them, not {duration_s:g}s"
        )
    if shard_count < 2:
        raise ValueError("a chaos run needs at least 2 shards: one paused, another restarted")
    rng = seeded_random(seed, "faults")
    rounds = int((duration_s - WARMUP_S - RECOVERY_S) // ROUND_S)
    faults: list[Fault] = []
    for number in range(rounds):
        kinds = list(FaultKind)
        if number > 0:
            kinds = [kind for kind in kinds if rng.random() < LATER_ROUND_ODDS]
        faults += _round(rng, WARMUP_S + number * ROUND_S, kinds, shard_count)
    return sorted(faults, key=lambda fault: fault.at_s)


def _round(
    rng: random.Random, start_s: float, kinds: list[FaultKind], shard_count: int
) -> list[Fault]:
    paused = rng.randrange(shard_count)
    other_shards = [shard for shard in range(shard_count) if shard != paused]
    faults: list[Fault] = []
    if FaultKind.KILL_AFTER_COMMIT in kinds:
        at_s = start_s + rng.uniform(0, 0.5)
        faults.append(Fault(at_s, FaultKind.KILL_AFTER_COMMIT, step=rng.choice(CRASH_STEPS)))
    if FaultKind.SHARD_PAUSE in kinds:
        offset = rng.uniform(CRASH_LEAD_S, ROUND_S - PAUSE_S - 1)
        faults.append(Fault(start_s + offset, FaultKind.SHARD_PAUSE, PAUSE_S, paused))
    for kind in (kind for kind in ON_TRAFFIC if kind in kinds):
        at_s = start_s + rng.uniform(2, ROUND_S - FREEZE_S[1] - 2)
        faults.append(_fault(rng, at_s, kind, other_shards))
    in_turn = [kind for kind in IN_TURN if kind in kinds]
    rng.shuffle(in_turn)
    cursor = start_s
    for kind in in_turn:
        cursor += rng.uniform(1, 3)
        fault = _fault(rng, cursor, kind, other_shards)
        faults.append(fault)
        cursor += fault.hold_s + RECOVERY_ESTIMATE_S[kind]
    return faults


def _fault(rng: random.Random, at_s: float, kind: FaultKind, other_shards: list[int]) -> Fault:
    if kind == FaultKind.WORKER_KILL:
        return Fault(at_s, kind, rng.uniform(0.5, 2))
    if kind == FaultKind.SHARD_RESTART:
        return Fault(at_s, kind, rng.uniform(1, 4), rng.choice(other_shards))
    if kind == FaultKind.TEMPORAL_RESTART:
        return Fault(at_s, kind, rng.uniform(0.5, 2))
    if kind == FaultKind.FREEZE_FLIP:
        return Fault(at_s, kind, rng.uniform(*FREEZE_S), rng.choice(other_shards))
    return Fault(at_s, kind)
