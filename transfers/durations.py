"""Hold timeouts as people type them: 90s, 10m, 2h, 1d (a number and one unit)."""

from __future__ import annotations

import re

from shards.errors import InvalidTtl
from shards.ledger import MAX_HOLD_TTL_S

_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?P<number>-?\d+(?:\.\d+)?)(?P<unit>[smhd])")
EXAMPLES = "like 90s, 10m, 2h or 1d"


def parse_hold_timeout(text: str) -> float:
    """'10m' -> 600.0 seconds. InvalidTtl unless above 0 and at most MAX_HOLD_TTL_S (30 days)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidTtl(f"timeout {text!r} is not a duration {EXAMPLES}")
    seconds = float(match["number"]) * _SECONDS_PER_UNIT[match["unit"]]
    if not 0 < seconds <= MAX_HOLD_TTL_S:
        maximum = MAX_HOLD_TTL_S // _SECONDS_PER_UNIT["d"]
        raise InvalidTtl(f"timeout {text} must be above 0 and at most {maximum}d")
    return seconds
