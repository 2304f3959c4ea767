"""What a fault did: a note for people, and whether it took effect (a worker killed, a shard
restarted, transfers cancelled ...) or was only attempted (no worker to kill, nothing in flight)."""

from __future__ import annotations

from dataclasses import dataclass

from transfers.devtools.chaos.schedule import Fault


@dataclass(frozen=True)
class Effect:
    note: str
    took_effect: bool = True


def attempted(note: str) -> Effect:
    """A fault that changed nothing; the note says why."""
    return Effect(note, took_effect=False)


@dataclass(frozen=True)
class InjectedFault:
    """A fault as it happened: seconds after traffic started, and what it did."""

    fault: Fault
    started_s: float
    ended_s: float
    effect: Effect
