"""The faults of a chaos run, drawn up front from `random.Random(seed)`: the same seed gives the
same faults, on the same targets, at the same offsets (the traffic around them still varies).

A run is split into rounds. Each round pauses one shard for longer than a step's start-to-close
timeout while the other faults happen one after another beside it, on the other shards; the first
round has every kind, later ones a seeded subset. After the last round, traffic keeps running for
`RECOVERY_S`: activity attempts lost with a killed worker are only retried once their
start-to-close timeout has passed.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Any

from workflows.policies import STEP_START_TO_CLOSE

STEP_TIMEOUT_S = STEP_START_TO_CLOSE.total_seconds()
WARMUP_S = 3.0  # traffic before the first fault
ROUND_S = 42.0
PAUSE_S = STEP_TIMEOUT_S + 5  # a paused shard outlives the attempts that were running on it
RECOVERY_S = STEP_TIMEOUT_S
MIN_DURATION_S = WARMUP_S + ROUND_S + RECOVERY_S
LATER_ROUND_ODDS = 0.6  # each kind's chance to be in a round after the first


class FaultKind(enum.StrEnum):
    WORKER_KILL = "worker_kill"  # SIGKILL the worker, then start a new one
    SHARD_RESTART = "shard_restart"  # stop one shard's PostgreSQL as a crash would, start it again
    TEMPORAL_RESTART = "temporal_restart"  # stop the dev server; same port, same SQLite file
    SHARD_PAUSE = "shard_pause"  # SIGSTOP a shard's processes for PAUSE_S, then SIGCONT
    DUPLICATE_BURST = "duplicate_burst"  # resubmit ids in flight, some with other fields


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
    """One planned fault: `at_s` after traffic starts, lasting `hold_s` (down time, pause)."""

    at_s: float
    kind: FaultKind
    hold_s: float = 0.0
    shard: int | None = None

    def describe(self) -> str:
        target = "" if self.shard is None else f" shard {self.shard}"
        lasting = f" for {self.hold_s:.1f}s" if self.hold_s else ""
        return f"t+{self.at_s:.1f}s {self.kind}{target}{lasting}"

    def as_json(self) -> dict[str, Any]:
        return {
            "at_s": round(self.at_s, 1),
            "kind": self.kind.value,
            "hold_s": round(self.hold_s, 1),
            "shard": self.shard,
        }


def seeded_random(seed: int, stream: str) -> random.Random:
    """The run's random stream for one purpose (faults, traffic, ...): the same for a seed."""
    return random.Random(f"{seed}/{stream}")  # noqa: S311 (reproducible on purpose, no secret)


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
    faults: list[Fault] = []
    if FaultKind.SHARD_PAUSE in kinds:
        offset = rng.uniform(0, ROUND_S - PAUSE_S - 2)
        faults.append(Fault(start_s + offset, FaultKind.SHARD_PAUSE, PAUSE_S, paused))
    in_turn = [kind for kind in kinds if kind != FaultKind.SHARD_PAUSE]
    rng.shuffle(in_turn)
    cursor = start_s
    for kind in in_turn:
        cursor += rng.uniform(1, 3)
        fault = _fault(rng, cursor, kind, [s for s in range(shard_count) if s != paused])
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
    return Fault(at_s, kind)
