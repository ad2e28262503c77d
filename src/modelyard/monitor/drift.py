"""Drift tests: a window of served traffic against the bundle's reference profile.

* every input summary in the profile (``mean_intensity``, ...) and the confidence:
  two-sample Kolmogorov-Smirnov (``scipy.stats.ks_2samp``), PSI as effect size;
* the predicted-label mix: chi-square test of homogeneity
  (``scipy.stats.chi2_contingency``) between reference and window counts, PSI;
* the embedding (projected on the profile's PCA directions): maximum mean
  discrepancy with an RBF kernel (median-distance bandwidth, ``scipy.spatial``),
  p-value from a permutation test. The permutations run on one precomputed kernel
  matrix (``scipy.stats.permutation_test`` would rebuild it for every resample,
  about ten times slower); a test checks that both give the same p-value.

A check fires when its p-value is below ``alpha / m`` (Bonferroni over the ``m``
checks, so the whole verdict has at most ``alpha`` chance of a false alarm when
nothing moved) and, for checks with a PSI, the PSI reaches ``min_psi``: with
thousands of records even a harmless wiggle is "significant", and the reference
was drawn from training data, which the model knows better than anything served.
Numpy and scipy only: the server runs these for its drift gauges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from modelyard.errors import DataError
from modelyard.monitor.report import Check

MIN_RECORDS = 30
"""Fewer records than this say nothing reliable; the check refuses them."""


@dataclass(frozen=True)
class DriftConfig:
    alpha: float = 0.01
    """Family-wise false-alarm rate (split over the checks, Bonferroni)."""
    min_psi: float = 0.1
    """Smallest PSI that counts as drift (0.1 is the usual 'moderate shift' mark)."""
    permutations: int = 2000
    """Permutations for the MMD p-value (its floor is 1 / (permutations + 1))."""
    max_reference: int = 500
    """Reference rows used for MMD (a seeded sample; the kernel is quadratic)."""
    max_window: int = 1000
    """Window rows used for MMD (a seeded sample, for the same reason)."""
    bins: int = 10
    """PSI bins: reference deciles."""
    seed: int = 0


@dataclass(frozen=True)
class WindowData:
    """What the drift tests need of a window, whatever its input kind."""

    summaries: dict[str, np.ndarray]
    projection: np.ndarray
    labels: Sequence[str]
    confidences: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


_EPS = 1e-4


def psi(reference: np.ndarray, window: np.ndarray, bins: int = 10) -> float:
    """Population stability index over the reference's quantile bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # a constant reference: bins below, at and above its value
        eps = 1e-9 * max(1.0, abs(float(edges[0])))
        inner = np.array([edges[0] - eps, edges[0] + eps])
    else:
        inner = edges[1:-1]
    ref_counts = np.bincount(
        np.searchsorted(inner, reference, side="right"), minlength=len(inner) + 1
    )
    win_counts = np.bincount(np.searchsorted(inner, window, side="right"), minlength=len(inner) + 1)
    return _psi_from_counts(ref_counts, win_counts)


def _psi_from_counts(reference: np.ndarray, window: np.ndarray) -> float:
    r = np.maximum(reference / max(reference.sum(), 1), _EPS)
    w = np.maximum(window / max(window.sum(), 1), _EPS)
    return float(np.sum((w - r) * np.log(w / r)))


def ks_check(
    name: str, reference: np.ndarray, window: np.ndarray, config: DriftConfig
) -> dict[str, Any]:
    from scipy import stats  # lazily: the server imports this module at startup

    result = stats.ks_2samp(reference, window)
    return {
        "name": name,
        "kind": "ks",
        "statistic": float(result.statistic),
        "p_value": float(result.pvalue),
        "psi": psi(reference, window, config.bins),
    }


def label_check(
    reference_distribution: dict[str, float],
    reference_samples: int,
    window_labels: Sequence[str],
) -> dict[str, Any]:
    """Chi-square homogeneity of the label mix (reference counts vs window counts)."""
    names = list(reference_distribution)
    names += sorted(set(window_labels) - set(names))  # labels the profile never saw
    ref = np.array([reference_distribution.get(n, 0.0) * reference_samples for n in names])
    index = {n: i for i, n in enumerate(names)}
    win = np.bincount([index[label] for label in window_labels], minlength=len(names))
    table = np.vstack([np.round(ref), win]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:  # a single class everywhere: nothing to compare
        statistic, p_value = 0.0, 1.0
    else:
        from scipy import stats

        result = stats.chi2_contingency(table, correction=False)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return {
        "name": "labels",
        "kind": "chi2",
        "statistic": statistic,
        "p_value": p_value,
        "psi": _psi_from_counts(ref, win.astype(np.float64)),
    }


def mmd_check(
    reference: np.ndarray,
    window: np.ndarray,
    config: DriftConfig,
    stop_above: float | None = None,
) -> dict[str, Any]:
    """Squared MMD (RBF kernel, median heuristic) with a permutation p-value.

    With ``stop_above`` (the level the p-value is held to) the permutations stop
    early once the p-value is sure to exceed it; the p-value returned is then the
    estimate from the permutations run.
    """
    rng = np.random.default_rng(config.seed)
    if len(reference) > config.max_reference:
        reference = reference[rng.choice(len(reference), config.max_reference, replace=False)]
    if len(window) > config.max_window:
        window = window[rng.choice(len(window), config.max_window, replace=False)]
    pooled = np.vstack([reference, window]).astype(np.float64)
    from scipy.spatial.distance import cdist

    distances = cdist(pooled, pooled, "sqeuclidean")
    bandwidth = np.median(distances[np.triu_indices(len(pooled), k=1)])
    kernel = np.exp(-distances / max(bandwidth, 1e-12))
    m, n = len(reference), len(window)

    def statistic(assignments: np.ndarray) -> np.ndarray:
        # Rows of +1/m (reference side) and -1/n (window side): s K s^T is the
        # biased MMD^2 estimate, for a chunk of permutations in one matrix product.
        weights = np.where(assignments, 1.0 / m, -1.0 / n)
        return cast("np.ndarray", np.einsum("ij,ij->i", weights @ kernel, weights))

    observed_assignment = np.arange(m + n) < m
    observed = float(statistic(observed_assignment[None, :])[0])
    # Once this many permutations reach the observed value, the final p-value
    # cannot fall below ``stop_above`` any more: stop (Besag-Clifford style), so
    # windows without drift cost a fraction of the permutations.
    hopeless = stop_above * (config.permutations + 1) - 1 if stop_above else np.inf
    exceed = done = 0
    while done < config.permutations and exceed <= hopeless:
        count = min(100, config.permutations - done)
        permuted = rng.permuted(np.tile(observed_assignment, (count, 1)), axis=1)
        exceed += int(np.sum(statistic(permuted) >= observed - 1e-12))
        done += count
    return {
        "name": "embedding",
        "kind": "mmd",
        "statistic": observed,
        "p_value": min(1.0, (exceed + 1) / (done + 1)),
        "psi": None,
    }


def _sample(description: dict[str, Any]) -> np.ndarray:
    return np.asarray(description["sample"], dtype=np.float64)


def run_checks(
    profile: dict[str, Any], window: WindowData, config: DriftConfig | None = None
) -> list[Check]:
    """Every check the profile and the window both allow, each with its drift decision."""
    config = config or DriftConfig()
    if len(window) < MIN_RECORDS:
        raise DataError(
            f"only {len(window)} records in the window; drift checks need at least "
            f"{MIN_RECORDS}: widen the window (--since/--last) or wait for more traffic"
        )
    raw: list[dict[str, Any]] = []
    for name, description in profile.get("features", {}).items():
        values = window.summaries.get(name)
        if values is None:
            continue
        values = values[np.isfinite(values)]
        if len(values) >= MIN_RECORDS:
            raw.append(ks_check(name, _sample(description), values, config))
    predictions = profile.get("predictions", {})
    if "confidence" in predictions:
        confidences = window.confidences[np.isfinite(window.confidences)]
        if len(confidences) >= MIN_RECORDS:
            reference = _sample(predictions["confidence"])
            raw.append(ks_check("confidence", reference, confidences, config))
    if "label_distribution" in predictions:
        raw.append(
            label_check(
                predictions["label_distribution"], int(profile.get("samples", 0)), window.labels
            )
        )
    reference_projection = np.asarray(
        profile.get("embedding", {}).get("projected_sample", []), dtype=np.float64
    )
    if reference_projection.size and window.projection.size:
        if reference_projection.shape[1] != window.projection.shape[1]:
            raise DataError(
                f"the window's embedding projection has {window.projection.shape[1]} dimensions, "
                f"the reference profile {reference_projection.shape[1]}: the log was written "
                "with another model's profile"
            )
        # Bonferroni counts this check too; its level is known before it runs.
        level = config.alpha / (len(raw) + 1)
        projection = window.projection[np.isfinite(window.projection).all(axis=1)]
        if len(projection) >= MIN_RECORDS:
            raw.append(mmd_check(reference_projection, projection, config, stop_above=level))
    if not raw:
        raise DataError("the reference profile and the window share nothing to compare")
    threshold = config.alpha / len(raw)
    return [
        Check(
            **check,
            drift=bool(
                check["p_value"] < threshold
                and (check["psi"] is None or check["psi"] >= config.min_psi)
            ),
            p_threshold=threshold,
        )
        for check in raw
    ]
