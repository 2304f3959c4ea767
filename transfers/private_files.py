"""Files only their owner may read, written without following a link planted in their place."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (mode 0600) all at once: readers see the old file or the new one."""
    staging = path.with_name(f".{path.name}.tmp")
    staging.unlink(missing_ok=True)
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    staging.replace(path)


def open_private(path: Path, flags: int) -> int:
    """A descriptor of `path` (created 0600 if missing) that was not reached through a link."""
    return os.open(path, os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | flags, 0o600)


def make_private(folder: Path) -> None:
    """Close `folder` to group and others if it is ours: whatever an older version left readable
    inside is then out of their reach. Through a descriptor: a link swapped in is not followed."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        info = os.fstat(descriptor)
        if info.st_uid == os.geteuid() and info.st_mode & 0o077:
            os.fchmod(descriptor, info.st_mode & 0o700)
    finally:
        os.close(descriptor)
