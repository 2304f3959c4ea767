"""Live progress of a chaos run with Rich: phase, transfers and batches done, faults so far and
under way."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table

from transfers.devtools.chaos.faults import FaultInjector
from transfers.devtools.chaos.workload import Workload
from transfers.terminal import styled


class ChaosProgress:
    """Redrawn a few times a second on a terminal; elsewhere (CI logs) one line per phase."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.current = "starting"
        self.workload: Workload | None = None
        self.injector: FaultInjector | None = None
        self._started = time.monotonic()

    def phase(self, name: str) -> None:
        self.current = name
        if not self.console.is_terminal:
            self.console.print(f"chaos: {name} ({self._elapsed()})", highlight=False)

    def follow(self, workload: Workload, injector: FaultInjector) -> None:
        self.workload, self.injector = workload, injector

    @contextlib.contextmanager
    def shown(self) -> Iterator[None]:
        if not self.console.is_terminal:
            yield
            return
        with Live(self, console=self.console, refresh_per_second=4, transient=True):
            yield

    def __rich__(self) -> RenderableType:
        grid = Table.grid(padding=(0, 2))
        grid.add_row("phase", styled((self.current, "bold"), f" ({self._elapsed()})"))
        if self.workload is not None:
            workload = self.workload
            done = workload.by_status
            grid.add_row(
                "transfers",
                f"{sum(done.values())} final of {len(workload.records)} submitted: "
                + ", ".join(f"{status} {number}" for status, number in sorted(done.items())),
            )
            batches = workload.batches.values()
            ended = sum(batch.outcome is not None for batch in batches)
            grid.add_row("batches", f"{ended} final of {len(batches)} submitted")
            grid.add_row("client retries", str(workload.client_retries))
        if self.injector is not None:
            injected = Counter(
                str(done.fault.kind) for done in self.injector.injected if done.effect.took_effect
            )
            grid.add_row("faults so far", ", ".join(f"{k} {n}" for k, n in injected.items()))
            grid.add_row("under way", ", ".join(sorted(self.injector.active)) or "none")
        return grid

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self._started:.0f}s"
