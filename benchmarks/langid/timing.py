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


def time_batched(predict: Predict, texts: Sequence[str], min_seconds: float = 1.0) -> float:
    """Median seconds for one batched pass over ``texts`` (repeated for >= min_seconds,
    3 to 9 passes), so a pass disturbed by another job on the machine does not decide."""
    predict(texts[:64])  # warm up
    passes: list[float] = []
    while len(passes) < 3 or (sum(passes) < min_seconds and len(passes) < 9):
        started = time.perf_counter()
        predict(texts)
        passes.append(time.perf_counter() - started)
    return statistics.median(passes)


def time_single(predict: Predict, texts: Sequence[str]) -> list[float]:
    """Per-call latency (microseconds) predicting one sentence at a time."""
    latencies = []
    for text in texts:
        started = time.perf_counter_ns()
        predict([text])
        latencies.append((time.perf_counter_ns() - started) / 1000)
    return latencies
