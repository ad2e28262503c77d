"""Timing on one pinned core, and the machine's load while timing."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

Predict = Callable[[Sequence[str]], list[str]]


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (other people's jobs share this machine)."""
    return [round(x, 2) for x in os.getloadavg()]


@contextmanager
def one_core(cpu: int) -> Iterator[None]:
    """Pin this process to one CPU for a timed section."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def time_batched(
    predict: Predict, texts: Sequence[str], min_seconds: float = 1.0
) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (this process) for one batched pass
    over ``texts``, repeated for >= min_seconds (3 to 9 passes), so a pass disturbed
    by another job on the machine does not decide. On a shared machine the CPU time
    is what the pass costs when the core is ours."""
    predict(texts[:64])  # warm up
    walls: list[float] = []
    cpus: list[float] = []
    while len(walls) < 3 or (sum(walls) < min_seconds and len(walls) < 9):
        wall, cpu = time.perf_counter(), time.process_time()
        predict(texts)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def time_single(predict: Predict, texts: Sequence[str]) -> list[float]:
    """Per-call latency (microseconds) predicting one sentence at a time."""
    latencies = []
    for text in texts:
        started = time.perf_counter_ns()
        predict([text])
        latencies.append((time.perf_counter_ns() - started) / 1000)
    return latencies
