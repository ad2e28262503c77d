"""Intra-op threads that follow the cores other processes leave free.

torch splits each operator across one thread per core and waits for the slowest. When
another process keeps one of two cores busy, the thread sharing that core runs half
the time and every operator waits for it: the quickstart's CNN then trains 3x slower
with two threads than with one (benchmarks/training/shared_cpu.py). A laptop always
has something else running, so ``train.threads=0`` (the default) gives torch only the
cores nobody else is using, never fewer than one: chosen once at the start of a
deterministic run (``train.deterministic=true``: a different thread count sums in a
different order, so the same seed would no longer give the same metrics; the count is
tagged on the run so ``train.threads=N`` reproduces it), re-read about once a second
otherwise.

Others' load is the machine's busy CPU time minus this process's own, from
``/proc/stat`` and :func:`os.times`; where ``/proc/stat`` does not exist (macOS,
Windows) torch's default is kept.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch

PROC_STAT = Path("/proc/stat")
CHECK_EVERY_S = 1.0
"""How often the load is re-read: often enough to follow a build starting beside us,
rarely enough that reading /proc/stat costs nothing next to a training step."""
THREADS_TAG = "modelyard.train_threads"
"""Run tag: the intra-op threads a run with a fixed count trained with."""
START_WINDOW_S = 0.3
"""How long the load is watched before a deterministic run picks its thread count."""
IDLE_SLACK = 0.25
"""Others' load below this many cores (daemons, a terminal) leaves every core ours."""


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds at one moment: the machine's busy time and ours."""

    at: float
    machine_busy_s: float
    own_s: float


def _machine_busy_s(stat: Path = PROC_STAT) -> float | None:
    """Busy CPU seconds of all cores since boot (the ``cpu`` line minus idle and iowait)."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(value) for value in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    # guest time is already counted in user/nice: the first 8 fields hold everything.
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def sample(stat: Path = PROC_STAT) -> CpuSample | None:
    """The CPU counters now, or None where the machine does not expose them."""
    busy = _machine_busy_s(stat)
    if busy is None:
        return None
    own = os.times()
    return CpuSample(time.monotonic(), busy, own.user + own.system)


def threads_for(others_cores: float, cores: int) -> int:
    """Threads that leave the cores other processes use to them (at least one)."""
    taken = max(0, math.ceil(others_cores - IDLE_SLACK))
    return max(1, min(cores, cores - taken))


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def others_cores(before: CpuSample, after: CpuSample) -> float:
    """Cores' worth of CPU that processes other than this one used between two samples."""
    wall = after.at - before.at
    ours = after.own_s - before.own_s
    return (after.machine_busy_s - before.machine_busy_s - ours) / wall


def free_cores(window_s: float = START_WINDOW_S) -> int:
    """Threads for a run that keeps one count: the cores left free over ``window_s``.

    The count holds for the whole run, so a burst inside the short window (a process
    starting) must not cost it a core: others' load is also capped by the one-minute
    load average, which a burst barely moves and a sustained job fills. Where the
    load cannot be read, every usable core (torch's own default)."""
    cores = usable_cores()
    before = sample()
    if before is None:
        return cores
    time.sleep(window_s)
    after = sample()
    if after is None:
        return cores
    return threads_for(min(others_cores(before, after), os.getloadavg()[0]), cores)


class AdaptiveThreads(L.Callback):
    """Sets torch's intra-op threads to the cores left free, re-checked every second."""

    def __init__(self, cores: int | None = None, every_s: float = CHECK_EVERY_S) -> None:
        self.cores = cores or usable_cores()
        self.every_s = every_s
        self.last: CpuSample | None = None
        self.changes: list[int] = []
        """Each thread count set, in order: what the run reports."""

    def _check(self) -> None:
        now = sample()
        if now is None:
            return
        last, self.last = self.last, now
        if last is None or now.at - last.at < self.every_s:
            if last is not None:
                self.last = last
            return
        threads = threads_for(others_cores(last, now), self.cores)
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
            self.changes.append(threads)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.last = sample()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._check()
