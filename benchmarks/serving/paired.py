"""Paired ratios of an arm against the baseline over rounds, each round holding one run
of every arm, summed up by their median and a percentile-bootstrap 95% interval over
rounds: on a VM whose speed drifts from minute to minute, the ratio of two runs taken
seconds apart moves far less than either run does (``shadow_overhead.py``)."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence


def paired_ratios(values: Sequence[float], base: Sequence[float]) -> list[float]:
    """Each round's ``value / base`` (rounds where the base is 0 are left out)."""
    if len(values) != len(base):
        raise ValueError(f"{len(values)} values against {len(base)} baseline rounds")
    return [value / b for value, b in zip(values, base, strict=True) if b]


def bootstrap_median(
    ratios: Sequence[float], resamples: int = 10_000, seed: int = 0
) -> dict[str, float | int]:
    """The median of ``ratios`` and its percentile-bootstrap 95% interval: rounds drawn
    with replacement ``resamples`` times, the 2.5th and 97.5th percentiles of the
    resampled medians."""
    if not ratios:
        raise ValueError("no rounds to sum up")
    draw = random.Random(seed)
    n = len(ratios)
    medians = sorted(statistics.median(draw.choices(ratios, k=n)) for _ in range(resamples))
    return {
        "median": statistics.median(ratios),
        "low": medians[int(0.025 * (resamples - 1))],
        "high": medians[int(0.975 * (resamples - 1))],
        "rounds": n,
    }
