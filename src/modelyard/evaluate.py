"""Metrics, a per-class report and the plots people look at: confusion matrix, curves."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)


@dataclass(frozen=True)
class ClassReport:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class LengthBucket:
    """Accuracy on the texts whose word count lies in ``min_words..max_words``."""

    name: str
    """``1-3``, ``4-10`` or ``11+``."""
    min_words: int
    max_words: int | None
    n: int
    accuracy: float

    @property
    def key(self) -> str:
        return "words_" + self.name.replace("-", "_").replace("+", "_plus")


LENGTH_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("1-3", 1, 3),
    ("4-10", 4, 10),
    ("11+", 11, None),
)
"""Short inputs are where language identification is hard; text reports break down by these."""


def word_counts(texts: Sequence[str]) -> np.ndarray:
    """Words per text: whitespace-separated tokens holding a letter or digit (so the
    tokenised " ." of treebank sentences is not a word)."""
    return np.fromiter(
        (sum(any(c.isalnum() for c in token) for token in text.split()) for text in texts),
        dtype=np.int64,
        count=len(texts),
    )


def length_buckets(
    texts: Sequence[str], labels: np.ndarray, predicted: np.ndarray
) -> tuple[LengthBucket, ...]:
    """Accuracy per sentence-length bucket (:data:`LENGTH_BUCKETS`)."""
    # A text with no word at all (only punctuation) counts as the shortest bucket.
    words = np.maximum(word_counts(texts), 1)
    buckets = []
    for name, low, high in LENGTH_BUCKETS:
        inside = (words >= low) & (words <= (high if high is not None else words.max()))
        n = int(inside.sum())
        accuracy = float((labels[inside] == predicted[inside]).mean()) if n else float("nan")
        buckets.append(LengthBucket(name, low, high, n, accuracy))
    return tuple(buckets)


@dataclass(frozen=True)
class EvaluationReport:
    """Everything an evaluation says about one model on one split."""

    split: str
    n: int
    accuracy: float
    macro_f1: float
    log_loss: float
    per_class: tuple[ClassReport, ...]
    confusion: tuple[tuple[int, ...], ...]
    labels: tuple[str, ...]
    text: str
    by_length: tuple[LengthBucket, ...] = ()
    """Text models: accuracy by sentence length (words); empty for images."""

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat numbers for MLflow (``test_accuracy``, ``test_f1_3`` ...)."""
        p = f"{prefix}{self.split}_"
        out = {
            f"{p}accuracy": self.accuracy,
            f"{p}macro_f1": self.macro_f1,
            f"{p}loss": self.log_loss,
        }
        for row in self.per_class:
            out[f"{p}f1_{row.label}"] = row.f1
        for bucket in self.by_length:
            if bucket.n:  # an empty bucket has no accuracy (NaN); only its count is logged
                out[f"{p}accuracy_{bucket.key}"] = bucket.accuracy
            out[f"{p}n_{bucket.key}"] = float(bucket.n)
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("text")
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def evaluate_probabilities(
    labels: np.ndarray,
    probabilities: np.ndarray,
    label_names: tuple[str, ...],
    split: str,
    texts: Sequence[str] | None = None,
) -> EvaluationReport:
    """Score predicted class probabilities (N, K) against true labels (N,).

    With ``texts`` (text models) the report adds accuracy by sentence length.
    """
    k = len(label_names)
    predicted = probabilities.argmax(axis=1)
    all_classes = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=all_classes, zero_division=0
    )
    per_class = tuple(
        ClassReport(
            label_names[i], float(precision[i]), float(recall[i]), float(f1[i]), int(support[i])
        )
        for i in all_classes
    )
    clipped = np.clip(probabilities, 1e-12, 1.0)
    by_length = () if texts is None else length_buckets(texts, labels, predicted)
    text = classification_report(
        labels,
        predicted,
        labels=all_classes,
        target_names=list(label_names),
        digits=4,
        zero_division=0,
    )
    if by_length:
        text += "\naccuracy by sentence length (words)\n" + "".join(
            f"{b.name:>12} {b.accuracy:10.4f} {b.n:10d}\n" for b in by_length
        )
    return EvaluationReport(
        split=split,
        n=int(labels.shape[0]),
        accuracy=float(accuracy_score(labels, predicted)),
        macro_f1=float(
            f1_score(labels, predicted, labels=all_classes, average="macro", zero_division=0)
        ),
        log_loss=float(
            log_loss(labels, clipped / clipped.sum(1, keepdims=True), labels=all_classes)
        ),
        per_class=per_class,
        confusion=tuple(
            tuple(int(v) for v in row)
            for row in confusion_matrix(labels, predicted, labels=all_classes)
        ),
        labels=tuple(label_names),
        text=text,
        by_length=by_length,
    )


def plot_confusion_matrix(report: EvaluationReport, path: Path) -> Path:
    """Write the confusion matrix (counts, row-normalised colours) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(report.confusion)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    k = len(report.labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.8 + 0.6 * k), dpi=100)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), report.labels, rotation=45, ha="right")
    ax.set_yticks(range(k), report.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{report.split}: accuracy {report.accuracy:.4f} (n={report.n})")
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    color="white" if rates[i, j] > 0.5 else "black",
                    fontsize=8,
                )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_curves(history: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """Loss and accuracy per epoch, train vs validation, as a PNG.

    ``history`` maps metric names (``train_loss``, ``val_acc`` ...) to (epoch, value).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for ax, kind in zip(axes, ("loss", "acc"), strict=True):
        for stage in ("train", "val"):
            points = history.get(f"{stage}_{kind}", [])
            if points:
                epochs, values = zip(*sorted(points), strict=True)
                ax.plot(epochs, values, marker="o", label=stage)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if kind == "acc" else "cross-entropy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def log_report(report: EvaluationReport, folder: str = "evaluation") -> None:
    """Metrics, per-class report (JSON + text) and confusion matrix into the active run."""
    import mlflow

    from modelyard.tracking import ctrl_c_after_write

    with ctrl_c_after_write():  # one cut short would leave an SQLite store locked
        mlflow.log_metrics(report.metrics())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / f"{report.split}_report.json").write_text(report.to_json())
        (out / f"{report.split}_report.txt").write_text(report.text)
        plot_confusion_matrix(report, out / f"{report.split}_confusion_matrix.png")
        mlflow.log_artifacts(str(out), artifact_path=folder)
