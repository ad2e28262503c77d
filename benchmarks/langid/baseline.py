"""The scikit-learn baseline: character n-gram TF-IDF + a linear SVM.

The usual strong, cheap text-classification baseline. It trains on modelyard's
train split; the n-gram range and C are chosen on modelyard's validation split
(a small grid, by macro-F1), so it gets the same data and the same early-stopping
information the modelyard model gets, and never sees the test split.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from labels import LABELS
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import LinearSVC

GRID: tuple[tuple[tuple[int, int], float], ...] = tuple(
    (ngrams, c) for ngrams in ((1, 3), (1, 4), (1, 5)) for c in (0.3, 1.0)
)


@dataclass(frozen=True)
class Baseline:
    pipeline: Pipeline
    ngram_range: tuple[int, int]
    c: float
    val_macro_f1: float
    fit_s: float
    """Wall time of fitting the chosen configuration on the train split."""
    grid_s: float
    """Wall time of the whole grid search (every configuration fitted and scored)."""

    @property
    def description(self) -> str:
        lo, hi = self.ngram_range
        return (
            f"TfidfVectorizer(char_wb {lo}-{hi}, sublinear_tf) + "
            f"LinearSVC(C={self.c}, class_weight=balanced)"
        )

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [str(label) for label in self.pipeline.predict(list(texts))]


def make(ngram_range: tuple[int, int], c: float) -> Pipeline:
    return make_pipeline(
        TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=ngram_range,
            sublinear_tf=True,
            lowercase=True,
            dtype="float32",
        ),
        LinearSVC(C=c, class_weight="balanced"),
    )


def fit(
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    val_texts: Sequence[str],
    val_labels: Sequence[str],
) -> Baseline:
    """Fit every grid point on the train split; keep the best by validation macro-F1."""
    grid_started = time.perf_counter()
    best: Baseline | None = None
    for ngram_range, c in GRID:
        started = time.perf_counter()
        pipeline = make(ngram_range, c).fit(list(train_texts), list(train_labels))
        fit_s = time.perf_counter() - started
        predicted = pipeline.predict(list(val_texts))
        score = float(
            f1_score(val_labels, predicted, labels=list(LABELS), average="macro", zero_division=0)
        )
        if best is None or score > best.val_macro_f1:
            best = Baseline(pipeline, ngram_range, c, score, fit_s, 0.0)
    assert best is not None
    return replace(best, grid_s=time.perf_counter() - grid_started)
