"""Paired ratios and their bootstrap interval (benchmarks/serving/paired.py)."""

from __future__ import annotations

import pytest
from benchmarks.serving.paired import bootstrap_median, paired_ratios


def test_each_round_is_divided_by_the_baseline_of_the_same_round() -> None:
    assert paired_ratios([12.0, 30.0, 9.0], [10.0, 20.0, 0.0]) == [1.2, 1.5]


def test_rounds_must_pair_up() -> None:
    with pytest.raises(ValueError, match="2 values against 3"):
        paired_ratios([1.0, 2.0], [1.0, 2.0, 3.0])


def test_the_median_lies_inside_its_interval_and_equal_rounds_give_no_width() -> None:
    found = bootstrap_median([1.1, 1.3, 0.9, 1.2, 1.0, 1.25, 1.15], resamples=2000)
    assert found["median"] == pytest.approx(1.15)
    assert found["rounds"] == 7
    assert found["low"] <= found["median"] <= found["high"]
    assert found["low"] < found["high"]
    flat = bootstrap_median([1.2] * 8, resamples=500)
    assert flat["low"] == flat["high"] == pytest.approx(1.2)


def test_more_spread_between_rounds_gives_a_wider_interval() -> None:
    tight = bootstrap_median([1.18, 1.2, 1.22, 1.19, 1.21, 1.2, 1.2, 1.21], resamples=2000)
    loose = bootstrap_median([0.9, 1.5, 1.0, 1.4, 1.2, 0.95, 1.45, 1.2], resamples=2000)
    assert loose["high"] - loose["low"] > 5 * (tight["high"] - tight["low"])


def test_the_same_seed_gives_the_same_interval() -> None:
    ratios = [0.9, 1.5, 1.0, 1.4, 1.2]
    assert bootstrap_median(ratios, resamples=300, seed=3) == bootstrap_median(
        ratios, resamples=300, seed=3
    )
    with pytest.raises(ValueError, match="no rounds"):
        bootstrap_median([])
