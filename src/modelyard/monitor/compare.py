"""Two versions side by side from the prediction log (``modelyard monitor compare``):
agreement over the requests both saw (shadow traffic logs both predictions under one
request id), the per-class disagreement matrix, latency, and accuracy where feedback
labels exist (shadow or canary alike).

Latency caveat: a main row's latency is the whole request's; a shadow row's is its
model call alone (it is run after the answer, off the request path).
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelyard.durations import parse_duration
from modelyard.errors import DataError
from modelyard.monitor.feedback import read_labelled
from modelyard.monitor.logstore import create_log_engine, predictions
from modelyard.monitor.performance import Scores, score


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); honest near 0 and
    1, where the normal approximation leaves [0, 1]."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Latency:
    n: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class Comparison:
    model: str
    since: float
    until: float
    baseline: str
    challenger: str
    paired: int
    agreement: float
    agreement_ci: tuple[float, float]
    labels: list[str]
    matrix: list[list[int]]
    """``matrix[i][j]``: paired requests the baseline called ``labels[i]`` and the
    challenger ``labels[j]`` (the diagonal is agreement)."""
    latency: dict[str, Latency]
    p50_difference_ms: float
    accuracy: dict[str, Scores]

    def disagreements(self) -> list[tuple[str, str, int]]:
        """Off-diagonal cells, largest first."""
        cells = [
            (self.labels[i], self.labels[j], count)
            for i, row in enumerate(self.matrix)
            for j, count in enumerate(row)
            if i != j and count
        ]
        return sorted(cells, key=lambda cell: -cell[2])

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["latency"] = {v: asdict(lat) for v, lat in self.latency.items()}
        out["accuracy"] = {v: asdict(s) for v, s in self.accuracy.items()}
        out["disagreements"] = [
            {"baseline": a, "challenger": b, "count": n} for a, b, n in self.disagreements()
        ]
        return cast("dict[str, Any]", _strict(out))


def _strict(value: Any) -> Any:
    """NaN as None everywhere (strict JSON)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def _rows(engine: Engine, model: str, since: float) -> list[Any]:
    query = (
        sa.select(
            predictions.c.version,
            predictions.c.request_id,
            predictions.c.label,
            predictions.c.latency_s,
        )
        .where(predictions.c.model == model)
        .where(predictions.c.time >= since)
        .order_by(predictions.c.id)
    )
    try:
        with engine.connect() as connection:
            return list(connection.execute(query))
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as error:
        if "no such table" in str(error) or "does not exist" in str(error):
            return []
        raise DataError(f"cannot read the prediction log: {error}") from None


def _latency(values: list[float]) -> Latency:
    if not values:
        return Latency(0, math.nan, math.nan)
    array = np.asarray(values) * 1000
    return Latency(len(values), float(np.percentile(array, 50)), float(np.percentile(array, 95)))


def pick_versions(counts: Counter[str], versions: tuple[str, str] | None) -> tuple[str, str]:
    """The baseline (most rows: it answers every request) and the challenger."""
    if versions is not None:
        missing = [v for v in versions if v not in counts]
        if missing:
            raise DataError(
                f"no records of version {', '.join(missing)} in the window; logged: "
                f"{', '.join(sorted(counts)) or 'none'}"
            )
        return versions
    ranked = [v for v, _ in counts.most_common()]
    if len(ranked) < 2:
        raise DataError(
            f"the window holds {'only version ' + ranked[0] if ranked else 'no records'}; "
            "compare needs two versions (serve with shadow= or canary=), or widen --since"
        )
    return ranked[0], ranked[1]


def compare(
    model: str,
    since: str = "1h",
    db_url: str | None = None,
    versions: tuple[str, str] | None = None,
    now: float | None = None,
) -> Comparison:
    until = time.time() if now is None else now
    start = until - parse_duration(since)
    engine = create_log_engine(db_url)
    try:
        rows = _rows(engine, model, start)
        labelled = read_labelled(engine, model, since=start)
    finally:
        engine.dispose()
    baseline, challenger = pick_versions(Counter(r.version for r in rows), versions)
    by_request: dict[str, dict[str, str]] = defaultdict(dict)
    latencies: dict[str, list[float]] = {baseline: [], challenger: []}
    for row in rows:
        if row.version in latencies:
            by_request[row.request_id].setdefault(row.version, row.label)
            latencies[row.version].append(row.latency_s)
    pairs = [(s[baseline], s[challenger]) for s in by_request.values() if len(s) == 2]
    labels = sorted({label for pair in pairs for label in pair})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for a, b in pairs:
        matrix[index[a]][index[b]] += 1
    agreed = sum(a == b for a, b in pairs)
    latency = {v: _latency(latencies[v]) for v in (baseline, challenger)}
    accuracy = {}
    for version in (baseline, challenger):
        keep = [i for i, v in enumerate(labelled.versions) if v == version]
        if keep:
            accuracy[version] = score(
                [labelled.predicted[i] for i in keep], [labelled.actual[i] for i in keep]
            )
    return Comparison(
        model,
        start,
        until,
        baseline,
        challenger,
        len(pairs),
        agreed / len(pairs) if pairs else math.nan,
        wilson(agreed, len(pairs)),
        labels,
        matrix,
        latency,
        latency[challenger].p50_ms - latency[baseline].p50_ms,
        accuracy,
    )
