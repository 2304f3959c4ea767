"""The data dir of one `transfers dev`: a lock that keeps a second stack out; its shard count."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from transfers.devtools.devstack.processes import StackError
from transfers.private_files import make_private, open_private

LOCK_FILE = "dev.lock"


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on the data dir for as long as the returned file stays open."""
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        refuse_links(data_dir)
        make_private(data_dir)
        lock = os.fdopen(open_private(data_dir / LOCK_FILE, os.O_RDWR | os.O_APPEND), "a+")
    except OSError as error:  # a path that cannot be a folder of ours: say which and why
        reason = error.strerror or str(error)
        raise StackError(f"cannot use {data_dir} as --data-dir: {reason}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise StackError(
            f"{data_dir} is used by another `transfers dev` (pid {holder}): stop it or pass "
            "another --data-dir"
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def refuse_links(data_dir: Path) -> None:
    """A data dir the stack wrote holds no link: one there came from elsewhere (a clone can
    commit `.transfers/...`), and following it would write, empty or start what it points to."""
    if data_dir.is_symlink():
        raise StackError(f"{data_dir} is a link: give the folder itself as --data-dir")
    for root, folders, files in os.walk(data_dir):
        for name in [*folders, *files]:
            if (Path(root) / name).is_symlink():
                raise StackError(
                    f"{Path(root) / name} is a link, which transfers never writes: remove it"
                )


def check_shard_count(data_dir: Path, shard_count: int) -> None:
    """Refuse to reopen a data dir with another number of shards: routing would move accounts."""
    existing = len(list((data_dir / "shards").glob("shard-*")))
    if existing and existing != shard_count:
        raise StackError(
            f"{data_dir} holds {existing} shards: pass --shards {existing}, or another "
            "--data-dir (a different count would route accounts to the wrong shard)"
        )
