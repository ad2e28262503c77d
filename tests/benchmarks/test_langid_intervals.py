"""Document-level bootstrap intervals (benchmarks/langid/intervals.py)."""

from __future__ import annotations

import pytest
from benchmarks.langid.intervals import document_bootstrap

LABELS = ("a", "b")


def test_point_values_are_the_plain_scores_and_inside_their_interval() -> None:
    truth = ["a"] * 6 + ["b"] * 6
    predicted = ["a"] * 5 + ["b"] + ["b"] * 4 + ["a", "unknown"]
    docs = [f"d{i // 2}" for i in range(12)]
    result = document_bootstrap(truth, predicted, docs, LABELS, resamples=500)
    assert result["documents"] == 6
    assert result["accuracy"] == pytest.approx(9 / 12)
    # F1 a: tp 5, predicted a 6, actual a 6; F1 b: tp 4, predicted b 5, actual 6.
    assert result["f1"]["a"] == pytest.approx(10 / 12)
    assert result["f1"]["b"] == pytest.approx(8 / 11)
    low, high = result["accuracy_ci95"]
    assert low < result["accuracy"] < high


def test_clustered_errors_widen_the_interval() -> None:
    truth = ["a"] * 40
    predicted = ["a"] * 30 + ["b"] * 10
    spread = [f"d{i % 10}" for i in range(40)]  # every document has one error in four
    lumped = [f"d{i // 4}" for i in range(40)]  # the errors fill 2.5 documents
    narrow = document_bootstrap(truth, predicted, spread, LABELS, resamples=500)
    wide = document_bootstrap(truth, predicted, lumped, LABELS, resamples=500)
    width = lambda r: r["accuracy_ci95"][1] - r["accuracy_ci95"][0]  # noqa: E731
    assert width(narrow) == pytest.approx(0.0) and width(wide) > 0.2


def test_paired_difference_of_a_system_with_itself_is_exactly_zero() -> None:
    from benchmarks.langid.intervals import paired_difference

    truth = ["a", "b"] * 10
    better = ["a", "b"] * 9 + ["b", "a"]
    worse = ["a", "a"] * 10
    docs = [f"d{i // 4}" for i in range(20)]
    same = paired_difference(truth, better, better, docs, LABELS, resamples=200)
    assert same == {"difference": 0.0, "ci95_low": 0.0, "ci95_high": 0.0}
    gap = paired_difference(truth, better, worse, docs, LABELS, resamples=200)
    assert gap["difference"] > 0.4 and gap["ci95_low"] > 0


def test_a_class_with_few_documents_is_in_every_resample() -> None:
    # One "b" document among many "a" ones: an unstratified draw often misses it and
    # scores F1 b as 0; within-class draws keep it, so a perfect system stays perfect.
    truth = ["a"] * 40 + ["b"] * 5
    docs = [f"d{i // 5}" for i in range(45)]
    result = document_bootstrap(truth, truth, docs, LABELS, resamples=300)
    assert result["f1_ci95"]["b"] == [1.0, 1.0] and result["macro_f1_ci95"] == [1.0, 1.0]


def test_paired_accuracy_difference_is_zero_for_identical_answers_and_signed() -> None:
    from benchmarks.langid.intervals import paired_accuracy_difference

    truth = ["a"] * 10 + ["b"] * 10
    good = list(truth)
    worse = ["b"] * 4 + ["a"] * 6 + ["b"] * 10  # four errors, all in documents d0 and d1
    docs = [f"d{i // 2}" for i in range(20)]
    same = paired_accuracy_difference(truth, good, good, docs, LABELS, resamples=300)
    assert same == {"difference": 0.0, "ci95_low": 0.0, "ci95_high": 0.0}
    ahead = paired_accuracy_difference(truth, good, worse, docs, LABELS, resamples=300)
    assert ahead["difference"] == pytest.approx(4 / 20)
    assert 0.0 <= ahead["ci95_low"] <= ahead["difference"] <= ahead["ci95_high"]
    behind = paired_accuracy_difference(truth, worse, good, docs, LABELS, resamples=300)
    assert behind["difference"] == pytest.approx(-4 / 20)
