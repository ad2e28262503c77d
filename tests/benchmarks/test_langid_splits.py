"""The repeated-split verdict (benchmarks/langid/splits.py): mean paired difference,
its t-interval and the win count, as RESULTS.md reports them."""

from __future__ import annotations

import math

import pytest
from benchmarks.langid.splits import summary, table


def _row(seed: int, ours: float, theirs: float) -> dict:
    f1 = {label: 0.9 for label in ("da", "sv", "nb", "nn", "other")}
    return {
        "seed": seed,
        "n_test": 100,
        "modelyard": {"macro_f1": ours, "f1": f1},
        "sklearn": {"macro_f1": theirs, "f1": f1},
        "difference": {"difference": ours - theirs},
    }


def test_summary_counts_wins_and_gives_a_t_interval() -> None:
    rows = [_row(0, 0.95, 0.94), _row(1, 0.94, 0.95), _row(2, 0.96, 0.94)]
    verdict = summary(rows)
    assert verdict["mean_difference"] == pytest.approx(0.02 / 3, abs=1e-12)
    assert (verdict["modelyard_wins"], verdict["sklearn_wins"], verdict["ties"]) == (2, 1, 0)
    low, high = verdict["ci95"]
    # differences +0.01, -0.01, +0.02: sd 0.01528, t(0.975, 2) = 4.3027
    half = 4.302653 * 0.0152753 / math.sqrt(3)
    assert low == pytest.approx(0.02 / 3 - half, abs=1e-5)
    assert high == pytest.approx(0.02 / 3 + half, abs=1e-5)
    assert 0.0 < verdict["p_one_sided"] < 0.5  # ahead on average, far from significant


def test_one_seed_has_no_interval_and_the_table_still_renders() -> None:
    verdict = summary([_row(7, 0.9, 0.95)])
    assert verdict["sklearn_wins"] == 1 and math.isnan(verdict["ci95"][0])
    assert "| 7 | 100 | 0.9000 | 0.9500 | -0.0500 |" in table([_row(7, 0.9, 0.95)], verdict)
