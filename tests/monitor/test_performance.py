"""Live accuracy from labelled predictions: the scores, per version and window."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score

from modelyard.errors import UsageError
from modelyard.monitor.feedback import Label, record_feedback
from modelyard.monitor.logstore import create_log_engine, write_rows
from modelyard.monitor.performance import performance, score


def test_score_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    actual = [str(v) for v in rng.integers(0, 4, 300)]
    predicted = [a if rng.random() < 0.7 else str(rng.integers(0, 5)) for a in actual]
    got = score(predicted, actual)
    classes = sorted(set(actual) | set(predicted))
    assert got.n == 300
    assert got.accuracy == pytest.approx(np.mean(np.array(predicted) == np.array(actual)))
    assert got.macro_f1 == pytest.approx(
        f1_score(actual, predicted, average="macro", labels=classes)
    )
    recalls = recall_score(actual, predicted, average=None, labels=sorted(set(actual)))
    assert got.recall == pytest.approx(dict(zip(sorted(set(actual)), recalls, strict=True)))
    assert math.isnan(score([], []).accuracy)


def _row(t: float, version: str, request_id: str, label: str) -> tuple[object, ...]:
    return (t, "m", version, request_id, "image", label, 0.9, 0.01, "{}", "[]", None, "main", None)


def test_performance_per_version_and_window(log_url: str) -> None:
    now = time.time()
    engine = create_log_engine(log_url)
    from modelyard.monitor.logstore import ensure_schema

    ensure_schema(engine)
    # version 1, 100 minutes ago: 3 of 4 right; version 2, now: 1 of 2 right; one old row
    rows = [_row(now - 6000 + i, "1", f"a{i}", "x") for i in range(4)]
    rows += [_row(now - 60, "2", "b0", "x"), _row(now - 30, "2", "b1", "y")]
    rows.append(_row(now - 5 * 86400, "1", "old", "x"))
    write_rows(engine, rows)
    labels = [Label(f"a{i}", "x" if i < 3 else "y") for i in range(4)]
    labels += [Label("b0", "x"), Label("b1", "x"), Label("old", "y")]
    record_feedback(engine, "m", labels, ["x", "y"])
    engine.dispose()
    result = performance("m", since="1d", every="1h", db_url=log_url, now=now + 1)
    assert {v: (s.n, s.accuracy) for v, s in result.by_version.items()} == {
        "1": (4, 0.75),
        "2": (2, 0.5),
    }
    assert result.by_version["1"].recall == {"x": 1.0, "y": 0.0}
    assert len(result.windows) == 2  # only the hours that had labels
    first, last = result.windows
    assert (first.version, first.scores.n, last.version, last.scores.n) == ("1", 4, "2", 2)
    assert first.end <= last.start
    assert result.to_dict()["by_version"]["2"]["accuracy"] == 0.5


def test_more_windows_than_a_report_scores_are_refused_before_reading(log_url: str) -> None:
    # --every 1ms over a day made 86,400,000 windows, each a pass over the labels.
    with pytest.raises(UsageError, match="86,400,000 windows; the most is 1,000"):
        performance("m", since="1d", every="1ms", db_url=log_url)
