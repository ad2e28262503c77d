"""The drift statistics on synthetic data (fast); the digits-model evidence is in
test_drift_evidence.py."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.errors import ModelyardError
from modelyard.monitor.drift import DriftConfig, WindowData, label_check, mmd_check, psi, run_checks
from modelyard.monitor.profile import _describe
from modelyard.monitor.summaries import text_summaries

FAST = DriftConfig(permutations=500)


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5000)
    assert psi(reference, rng.normal(size=2000)) < 0.02
    assert psi(reference, rng.normal(1.0, size=2000)) > 0.5
    assert psi(np.zeros(100), np.zeros(50)) == 0.0  # a constant feature


def test_label_check_sees_a_changed_class_mix() -> None:
    reference = {"a": 0.5, "b": 0.3, "c": 0.2}
    same = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    moved = ["a"] * 10 + ["b"] * 20 + ["c"] * 70
    assert label_check(reference, 2000, same)["p_value"] > 0.5
    changed = label_check(reference, 2000, moved)
    assert changed["p_value"] < 1e-10 and changed["psi"] > 0.5
    unseen = label_check(reference, 2000, [*same, "zzz", "zzz"])  # a label the profile lacks
    assert unseen["statistic"] > 0


def test_mmd_sees_a_multivariate_shift_that_marginals_hide() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(1000, 2))
    same = rng.normal(size=(150, 2))
    # Same marginals, opposite correlation: per-feature tests cannot see this.
    flipped = rng.multivariate_normal([0, 0], [[1, -0.9], [-0.9, 1]], size=150)
    base = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], size=1000)
    assert mmd_check(reference, same, FAST)["p_value"] > 0.01
    assert mmd_check(base, flipped, FAST)["p_value"] <= 2 / (FAST.permutations + 1)


def _profile(rng: np.random.Generator) -> dict:  # type: ignore[type-arg]
    return {
        "samples": 1000,
        "features": {"f": _describe(rng.normal(size=1000))},
        "predictions": {
            "label_distribution": {"a": 0.5, "b": 0.5},
            "confidence": _describe(rng.uniform(0.5, 1, size=1000)),
        },
        "embedding": {"projected_sample": rng.normal(size=(1000, 3)).tolist()},
    }


def _window(rng: np.random.Generator, n: int, shift: float = 0.0) -> WindowData:
    return WindowData(
        summaries={"f": rng.normal(shift, size=n)},
        projection=rng.normal(shift, size=(n, 3)),
        labels=list(rng.choice(["a", "b"], n)),
        confidences=rng.uniform(0.5, 1, size=n),
    )


def test_run_checks_corrects_for_multiple_tests_and_flags_a_shift() -> None:
    rng = np.random.default_rng(2)
    profile = _profile(rng)
    calm = run_checks(profile, _window(rng, 200), FAST)
    assert [c.name for c in calm] == ["f", "confidence", "labels", "embedding"]
    assert all(c.p_threshold == pytest.approx(0.01 / 4) for c in calm)
    assert not any(c.drift for c in calm)
    moved = {c.name: c for c in run_checks(profile, _window(rng, 200, shift=1.0), FAST)}
    assert moved["f"].drift and moved["embedding"].drift
    assert not moved["labels"].drift and not moved["confidence"].drift


def test_a_significant_but_tiny_effect_is_not_drift() -> None:
    rng = np.random.default_rng(3)
    profile = _profile(rng)
    profile["features"]["f"] = _describe(rng.normal(size=20000))
    huge = _window(rng, 20000, shift=0.08)  # p tiny with 20k rows, PSI ~0.006
    check = next(c for c in run_checks(profile, huge, FAST) if c.name == "f")
    assert check.p_value < check.p_threshold and check.psi is not None and check.psi < 0.1
    assert not check.drift


def test_too_few_records_is_a_user_error() -> None:
    rng = np.random.default_rng(4)
    with pytest.raises(ModelyardError, match="only 10 records"):
        run_checks(_profile(rng), _window(rng, 10))


def test_text_in_an_unseen_language_moves_the_text_summaries() -> None:
    """A text model's profile holds the same kind of samples; the script share moves."""
    english = [
        "the cat sat on the mat",
        "models should be watched in production",
        "drift happens when traffic changes",
        "please send the report by friday",
        "it rained all day in the city",
    ] * 40
    russian = [
        "кошка сидела на коврике",
        "модели нужно наблюдать в работе",
        "дрейф бывает когда меняется трафик",
        "пожалуйста пришлите отчёт в пятницу",
    ] * 10
    reference = text_summaries(english)
    profile = {"samples": len(english), "features": {k: _describe(v) for k, v in reference.items()}}

    def window(texts: list[str]) -> WindowData:
        return WindowData(
            text_summaries(texts),
            np.zeros((len(texts), 0)),
            ["x"] * len(texts),
            np.ones(len(texts)),
        )

    foreign = {c.name: c for c in run_checks(profile, window(russian), FAST)}
    assert foreign["non_latin_share"].drift
    assert not any(c.drift for c in run_checks(profile, window(english[:40]), FAST))


def test_mmd_p_value_agrees_with_scipy_permutation_test() -> None:
    """The permutation loop is ours (on a precomputed kernel, for speed); its p-value
    must match scipy.stats.permutation_test computing MMD from scratch each time."""
    from scipy import stats
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(5)
    reference, window = rng.normal(size=(60, 2)), rng.normal(0.1, size=(40, 2))
    pooled = np.vstack([reference, window])
    distances = cdist(pooled, pooled, "sqeuclidean")
    bandwidth = np.median(distances[np.triu_indices(len(pooled), k=1)])

    def mmd2(x: np.ndarray, y: np.ndarray) -> float:
        k = lambda a, b: np.exp(-cdist(a, b, "sqeuclidean") / bandwidth)  # noqa: E731
        return float(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())

    ours = mmd_check(reference, window, DriftConfig(permutations=2000, max_reference=1000))
    assert ours["statistic"] == pytest.approx(mmd2(reference, window), rel=1e-9)
    # scipy permutes 1-D samples, so permute row indices into the pooled data.
    theirs = stats.permutation_test(
        (np.arange(60), np.arange(60, 100)),
        lambda i, j: mmd2(pooled[i.astype(int)], pooled[j.astype(int)]),
        n_resamples=2000,
        alternative="greater",
        random_state=0,
    )
    assert 0.001 < theirs.pvalue < 0.2  # a case where the p-value is informative
    assert ours["p_value"] == pytest.approx(theirs.pvalue, abs=0.02)
