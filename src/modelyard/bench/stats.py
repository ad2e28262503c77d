"""Numbers out of raw measurements: percentiles, one level's result, and input parsing.

Percentiles are nearest-rank (the value at rank ceil(q/100 * n)), as perf_analyzer
and most load testers report them: every reported latency is one that a request
really saw, never an interpolation between two.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.durations import parse_duration as parse_duration  # one grammar, one home
from modelyard.errors import UsageError

SELF_TEST_DURATION_S = 1.0
"""Measured time per level of a self-test. Against a trivial endpoint one second is
thousands of requests per level (a stable rate and p99), so the default four levels
take about five seconds, not a benchmark's ten seconds per level."""
SELF_TEST_WARMUP_S = 0.25
"""Unmeasured warm-up per self-test level: connecting and the first requests."""

PERCENTILES = (50, 90, 95, 99)


def parse_levels(text: str) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]``: the concurrency levels, each a positive integer."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise UsageError(f"'{text}' is not a list of concurrency levels; write e.g. 1,8,32,64")
    return levels


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of already sorted values (0 < q <= 100)."""
    if not sorted_values:
        raise ValueError("no values")
    # The small epsilon keeps q * n / 100 from rounding up past an exact rank (99.9 * 10).
    rank = math.ceil(q * len(sorted_values) / 100 - 1e-9)
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


@dataclass(frozen=True)
class Partial:
    """One process's measurements: latencies of 2xx answers, errors, the window length."""

    latencies: array[float]
    errors: dict[str, int]
    window_s: float


@dataclass(frozen=True)
class LevelResult:
    """One concurrency level, measured over the window after the warm-up."""

    concurrency: int
    requests: int
    """Requests answered inside the window, errors included."""
    errors: int
    """Non-2xx answers plus connection failures and timeouts."""
    throughput: float
    """Successful (2xx) answers per second; errors do not count, a fast 500 is no speed."""
    window_s: float
    """Length of the measured window (the warm-up excluded)."""
    p50_ms: float | None = None
    """Latency percentiles, mean and max over the 2xx answers; None when there were none."""
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    max_ms: float | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)
    """Errors by kind: ``HTTP 500``, ``timeout``, ``connection refused``, ..."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def latency_summary(latencies_s: Iterable[float]) -> dict[str, float | None]:
    """``p50_ms`` ... ``p99_ms``, ``mean_ms``, ``max_ms`` of latencies given in seconds."""
    ordered = sorted(latencies_s)
    keys = [f"p{q}_ms" for q in PERCENTILES] + ["mean_ms", "max_ms"]
    if not ordered:
        return dict.fromkeys(keys)
    values = [percentile(ordered, q) for q in PERCENTILES]
    values += [math.fsum(ordered) / len(ordered), ordered[-1]]
    return {key: round(value * 1000, 4) for key, value in zip(keys, values, strict=True)}


def summarize(concurrency: int, partials: Sequence[Partial]) -> LevelResult:
    """Merge the processes' measurements into one level's result.

    Throughput sums each process's own rate, since their windows are nearly but
    not exactly the same length.
    """
    errors: Counter[str] = Counter()
    for part in partials:
        errors.update(part.errors)
    ok = sum(len(part.latencies) for part in partials)
    latency = latency_summary(value for part in partials for value in part.latencies)
    throughput = sum(len(part.latencies) / part.window_s for part in partials if part.window_s)
    return LevelResult(
        concurrency=concurrency,
        requests=ok + sum(errors.values()),
        errors=sum(errors.values()),
        throughput=round(throughput, 2),
        window_s=round(max((part.window_s for part in partials), default=0.0), 4),
        p50_ms=latency["p50_ms"],
        p90_ms=latency["p90_ms"],
        p95_ms=latency["p95_ms"],
        p99_ms=latency["p99_ms"],
        mean_ms=latency["mean_ms"],
        max_ms=latency["max_ms"],
        error_kinds=dict(errors.most_common()),
    )
