"""Where `transfers dev` keeps its data unless told otherwise: `.transfers` in the current folder.

Its own module: the CLI's options name it before any setting (pydantic) is loaded.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_DATA_DIR = Path(".transfers")
