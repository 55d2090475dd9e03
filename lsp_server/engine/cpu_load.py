"""How busy other processes keep the CPUs, to pick llama.cpp's thread count request by request.

On a small machine the best count depends on what else runs: on an idle 2-core box two
llama.cpp threads served the typing trace at 371 ms p50, one thread about 1.6x slower; with a
build beside it, two threads were 3.3x slower than one (workers spin at barriers and collapse
when a core is taken). So the count follows the CPU time other processes used since the last
request: ``/proc/stat``'s busy time minus this process's own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

IDLE_OTHERS = 0.3
"""Cores other processes may keep busy for the machine to count as idle."""
MIN_INTERVAL_S = 0.2
"""Shorter intervals are too coarse in jiffies; the last estimate stands."""


def read_proc_stat() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, or ``None`` off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / hz, total / hz


class OtherLoad:
    """Cores kept busy by other processes between two samples (this process excluded)."""

    def __init__(
        self,
        read_stat: Callable[[], tuple[float, float] | None] = read_proc_stat,
        own_cpu: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_stat = read_stat
        self._own_cpu = own_cpu
        self._clock = clock
        self._last: tuple[float, float, float] | None = None
        self.estimate: float | None = None

    def sample(self) -> float | None:
        """The other processes' load since the last sample, in cores; ``None`` until known."""
        stat = self._read_stat()
        if stat is None:
            return None
        now = (self._clock(), stat[0], self._own_cpu())
        last = self._last
        if last is None or now[0] - last[0] >= MIN_INTERVAL_S:
            if last is not None:
                others = (now[1] - last[1]) - (now[2] - last[2])
                self.estimate = max(0.0, others / (now[0] - last[0]))
            self._last = now
        return self.estimate


def threads_for(cpus: int, others: float | None) -> int:
    """llama.cpp threads for a small machine: all cores when the others leave them idle."""
    if cpus > 4:
        return cpus // 2  # about the physical cores, as llama.cpp recommends
    if others is not None and others < IDLE_OTHERS:
        return cpus
    return max(1, cpus - 1)
