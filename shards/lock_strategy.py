"""How a step guards its rows against concurrent writers (shards.engine.runner runs either).

Its own module: settings and the CLI name it without loading the database driver.
"""

from __future__ import annotations

import enum


class LockStrategy(enum.StrEnum):
    """Pessimistic locks the rows a step reads; optimistic compares versions when it writes."""

    PESSIMISTIC = "pessimistic"
    OPTIMISTIC = "optimistic"
