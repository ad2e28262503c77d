from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelyard.evaluate import evaluate_probabilities, plot_confusion_matrix, plot_curves


def test_report_numbers() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.9 + 0.1 / 3
    report = evaluate_probabilities(labels, probs, ("a", "b", "c"), "test")
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.confusion == ((1, 1, 0), (0, 2, 0), (1, 0, 1))
    b = report.per_class[1]
    assert (b.precision, b.recall, b.support) == (pytest.approx(2 / 3), 1.0, 2)
    assert report.metrics()["test_f1_b"] == pytest.approx(0.8)
    assert "macro avg" in report.text
    assert '"per_class"' in report.to_json()


def test_plots_are_pngs(tmp_path: Path) -> None:
    labels = np.array([0, 1, 1])
    report = evaluate_probabilities(labels, np.eye(2)[[0, 1, 0]], ("x", "y"), "val")
    for path in (
        plot_confusion_matrix(report, tmp_path / "c.png"),
        plot_curves(
            {"train_loss": [(0, 1.0), (1, 0.5)], "val_acc": [(0, 0.5), (1, 0.9)]},
            tmp_path / "k.png",
        ),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accuracy_by_sentence_length() -> None:
    from modelyard.evaluate import word_counts

    texts = ["ja .", "Det er to grunner til det .", "a b c d e f g h i j k l m", "Hei !"]
    assert word_counts(texts).tolist() == [1, 6, 13, 1]
    labels = np.array([0, 1, 1, 0])
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]])
    report = evaluate_probabilities(labels, probabilities, ("x", "y"), "test", texts=texts)
    buckets = {b.name: (b.n, b.accuracy) for b in report.by_length}
    assert buckets == {"1-3": (2, 0.5), "4-10": (1, 0.0), "11+": (1, 1.0)}
    metrics = report.metrics()
    assert metrics["test_accuracy_words_1_3"] == 0.5 and metrics["test_n_words_11_plus"] == 1
    assert "accuracy by sentence length" in report.text
    images = evaluate_probabilities(labels, probabilities, ("x", "y"), "test")
    assert images.by_length == () and not any("words" in k for k in images.metrics())
