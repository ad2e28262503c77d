"""Live accuracy: the served predictions that got feedback labels, scored per
version and per time window (``modelyard monitor performance``)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.durations import parse_duration
from modelyard.errors import UsageError
from modelyard.monitor.feedback import Labelled, read_labelled
from modelyard.monitor.logstore import create_log_engine

MAX_WINDOWS = 1000
"""Most time windows one report scores: each is a pass over the labels, so --every 1ms
over a day did not end."""


@dataclass(frozen=True)
class Scores:
    """Accuracy, macro-F1 (over the classes seen in truth or prediction) and recall."""

    n: int
    accuracy: float
    macro_f1: float
    recall: dict[str, float] = field(default_factory=dict)


def score(predicted: Sequence[str], actual: Sequence[str]) -> Scores:
    n = len(actual)
    if n == 0:
        return Scores(0, math.nan, math.nan)
    classes = sorted(set(actual) | set(predicted))
    hits = {c: 0 for c in classes}
    true = {c: 0 for c in classes}
    said = {c: 0 for c in classes}
    for p, a in zip(predicted, actual, strict=True):
        true[a] += 1
        said[p] += 1
        if p == a:
            hits[a] += 1
    f1s = []
    for c in classes:
        denominator = true[c] + said[c]
        f1s.append(2 * hits[c] / denominator if denominator else 0.0)
    recall = {c: hits[c] / true[c] for c in classes if true[c]}
    return Scores(n, sum(hits.values()) / n, sum(f1s) / len(f1s), recall)


@dataclass(frozen=True)
class WindowScores:
    start: float
    end: float
    version: str
    scores: Scores


@dataclass(frozen=True)
class Performance:
    model: str
    since: float
    until: float
    by_version: dict[str, Scores]
    windows: list[WindowScores]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "since": self.since,
            "until": self.until,
            "by_version": {v: _clean(asdict(s)) for v, s in self.by_version.items()},
            "windows": [
                {"start": w.start, "end": w.end, "version": w.version, **_clean(asdict(w.scores))}
                for w in self.windows
            ],
        }


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """NaN as None, so ``--json`` output is strict JSON."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}


def _by_version(labelled: Labelled, keep: Sequence[int]) -> dict[str, Scores]:
    versions = sorted({labelled.versions[i] for i in keep}, key=_version_key)
    out = {}
    for version in versions:
        rows = [i for i in keep if labelled.versions[i] == version]
        out[version] = score(
            [labelled.predicted[i] for i in rows], [labelled.actual[i] for i in rows]
        )
    return out


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def performance(
    model: str,
    since: str = "1d",
    every: str | None = None,
    db_url: str | None = None,
    now: float | None = None,
) -> Performance:
    """Scores of ``model``'s labelled predictions of the last ``since``, per version,
    and per ``every``-long window (default: a quarter of ``since``)."""
    span = parse_duration(since)
    step = parse_duration(every) if every else span / 4
    if span / step > MAX_WINDOWS:
        raise UsageError(
            f"--every {every} over --since {since} makes {math.ceil(span / step):,} windows; "
            f"the most is {MAX_WINDOWS:,}: pass a longer --every (at least "
            f"{math.ceil(span / MAX_WINDOWS)}s)"
        )
    until = time.time() if now is None else now
    start = until - span
    engine = create_log_engine(db_url)
    try:
        labelled = read_labelled(engine, model, since=start)
    finally:
        engine.dispose()
    everything = list(range(len(labelled)))
    windows = []
    edge = start
    while edge < until:
        end = min(edge + step, until)
        inside = [
            i
            for i in everything
            if edge <= labelled.times[i] < end or (end == until and labelled.times[i] == end)
        ]
        for version, scores in _by_version(labelled, inside).items():
            windows.append(WindowScores(edge, end, version, scores))
        edge = end
    return Performance(model, start, until, _by_version(labelled, everything), windows)
