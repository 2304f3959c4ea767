"""Durations as people type them: 90s, 10m, 2h, 1d (a number and one unit)."""

from __future__ import annotations

import re

from shards.errors import InvalidTtl
from shards.validation import MAX_HOLD_TTL_S

_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?P<number>-?\d+(?:\.\d+)?)(?P<unit>[smhd])")
EXAMPLES = "like 90s, 10m, 2h or 1d"


def parse_seconds(text: str) -> float | None:
    """'10m' -> 600.0; None unless `text` is a number (maybe signed) and one unit."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return None
    return float(match["number"]) * _SECONDS_PER_UNIT[match["unit"]]


def parse_hold_timeout(text: str) -> float:
    """'10m' -> 600.0 seconds. InvalidTtl unless above 0 and at most MAX_HOLD_TTL_S (30 days)."""
    seconds = parse_seconds(text)
    if seconds is None:
        raise InvalidTtl(f"timeout {text!r} is not a duration {EXAMPLES}")
    if not 0 < seconds <= MAX_HOLD_TTL_S:
        maximum = MAX_HOLD_TTL_S // _SECONDS_PER_UNIT["d"]
        raise InvalidTtl(f"timeout {text} must be above 0 and at most {maximum}d")
    return seconds
