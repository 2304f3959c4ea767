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
    """Take group and other permissions off `folder` and everything in it that we own (a data
    dir an older version left readable to all); links are neither followed nor changed."""
    me = os.geteuid()
    for root, folders, files in os.walk(folder):
        for path in [Path(root), *(Path(root) / name for name in [*folders, *files])]:
            info = path.lstat()
            if info.st_uid == me and not path.is_symlink() and info.st_mode & 0o077:
                path.chmod(info.st_mode & 0o700)
