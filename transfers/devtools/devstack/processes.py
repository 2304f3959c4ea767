"""Child processes of the dev stack: own session, output to a log file, stopped politely."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from transfers.devtools.logs import log_tail
from transfers.private_files import open_private

PR_SET_PDEATHSIG = 1
# Looked up once here: between fork and exec the child should call it, not load a library.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


class StackError(Exception):
    """The stack cannot start or keep running; the message says why, with a log tail if any."""


class StopRequested(Exception):
    """Ctrl-C or SIGTERM arrived while the stack was starting."""


def _die_with_parent() -> None:
    """Runs in the child: if `transfers dev` is killed outright, its children get SIGTERM too."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ChildProcess:
    """A long-running program; its own session keeps a terminal's Ctrl-C from reaching it, so
    `transfers dev` alone decides the order of the shutdown."""

    name: str
    command: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # One run per log: its tail explains this run. Never written through a link (a clone
        # could commit `.transfers/devtools/logs/worker.log -> ~/.bashrc`).
        log = open_private(self.log_path, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(log, "wb") as log_file:
            self.process = subprocess.Popen(  # noqa: S603
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def check_running(self) -> None:
        """Raise StackError, with the end of the log, if the process has exited."""
        code = None if self.process is None else self.process.poll()
        if code is not None:
            raise StackError(
                f"{self.name} exited with code {code}; last lines of {self.log_path}:\n"
                + log_tail(self.log_path)
            )

    def stop(self, timeout_s: float) -> None:
        """SIGTERM, then SIGKILL if it is still there after `timeout_s`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def wait_until(
    ready: Callable[[], Awaitable[bool]],
    *,
    what: str,
    watched: list[ChildProcess],
    stopping: asyncio.Event,
    timeout_s: float,
) -> None:
    """Poll `ready` until true; fail fast when a watched process dies or a stop is requested."""
    deadline = time.monotonic() + timeout_s
    while not await ready():
        for child in watched:
            child.check_running()
        if stopping.is_set():
            raise StopRequested
        if time.monotonic() > deadline:
            logs = ", ".join(str(child.log_path) for child in watched)
            raise StackError(f"{what} not ready after {timeout_s:.0f}s (see {logs})")
        await asyncio.sleep(0.2)
