"""Reading the log files of the processes the dev stack, tests and bench start."""

from __future__ import annotations

from pathlib import Path


def log_tail(path: Path, lines: int = 15) -> str:
    """The last `lines` lines of a log, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"
