"""CPU seconds and peak memory of the processes behind a scenario (Temporal, worker, shards)."""

from __future__ import annotations

from dataclasses import dataclass, field

import psutil


@dataclass
class ProcessTree:
    """A process and its descendants, sampled: CPU used since the first sample, peak RSS.

    Descendants come and go (a PostgreSQL backend per connection); each one's CPU counts from
    the first sample that saw it (all of it when it started after `start`) to the last one.
    """

    pid: int
    descendants: bool = True
    _base: dict[tuple[int, float], float] = field(default_factory=dict)
    _last: dict[tuple[int, float], float] = field(default_factory=dict)
    _started: bool = False
    peak_rss_bytes: int = 0

    def restart(self) -> None:
        """Count from now: CPU from the next sample on, the peak among later samples."""
        self._base.clear()
        self._last.clear()
        self._started = False
        self.peak_rss_bytes = 0
        self.sample()

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            members = [root, *(root.children(recursive=True) if self.descendants else [])]
        except psutil.Error:  # the process is gone: its last sample stands
            return
        for process in members:
            try:
                with process.oneshot():
                    key = (process.pid, process.create_time())
                    times = process.cpu_times()
                    used = times.user + times.system
                    if process.pid == self.pid:
                        self.peak_rss_bytes = max(self.peak_rss_bytes, process.memory_info().rss)
            except psutil.Error:
                continue
            if key not in self._base:
                self._base[key] = used if not self._started else 0.0
            self._last[key] = used
        self._started = True

    @property
    def cpu_s(self) -> float:
        return sum(self._last[key] - base for key, base in self._base.items())


@dataclass(frozen=True)
class Usage:
    """What one scenario cost: CPU seconds per process group, the worker's peak RSS (the
    largest of its processes')."""

    server_cpu_s: float | None
    worker_cpu_s: float
    shards_cpu_s: float | None
    worker_peak_rss_mb: float
    load_cpu_s: float  # the load generator: the bench's own process, its clients of Temporal

    @classmethod
    def total(cls, usages: list[Usage]) -> Usage:
        """Several windows of one scenario: CPU added up, the highest peak."""

        def added(values: list[float | None]) -> float | None:
            return None if any(value is None for value in values) else sum(v or 0 for v in values)

        return cls(
            server_cpu_s=added([usage.server_cpu_s for usage in usages]),
            worker_cpu_s=sum(usage.worker_cpu_s for usage in usages),
            shards_cpu_s=added([usage.shards_cpu_s for usage in usages]),
            worker_peak_rss_mb=max((usage.worker_peak_rss_mb for usage in usages), default=0.0),
            load_cpu_s=sum(usage.load_cpu_s for usage in usages),
        )

    @classmethod
    def of(
        cls,
        server: ProcessTree | None,
        workers: list[ProcessTree],
        shards: list[ProcessTree],
        load: ProcessTree,
    ) -> Usage:
        return cls(
            load_cpu_s=load.cpu_s,
            server_cpu_s=None if server is None else server.cpu_s,
            worker_cpu_s=sum(worker.cpu_s for worker in workers),
            shards_cpu_s=sum(shard.cpu_s for shard in shards) if shards else None,
            worker_peak_rss_mb=max(worker.peak_rss_bytes for worker in workers) / 2**20,
        )
