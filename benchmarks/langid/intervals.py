"""Bootstrap intervals that respect documents: resample whole documents, not sentences.

Sentences of one document are not independent (same names, topic, speaker), so a
sentence bootstrap on a document-grouped test set gives intervals that are too
narrow. Here each resample draws documents with replacement and sums their
confusion matrices. Documents are drawn within their class (a stratified
bootstrap, as the split was stratified): Swedish has two test documents, and a
resample without any would score its F1 as 0 rather than measure anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _confusions(
    truth: Sequence[str], predicted: Sequence[str], clusters: Sequence[str], labels: Sequence[str]
) -> np.ndarray:
    """(documents, K, K+1) confusion counts; the last column counts answers outside
    ``labels`` (an abstention such as ``unknown``)."""
    index = {label: i for i, label in enumerate(labels)}
    names = {name: i for i, name in enumerate(dict.fromkeys(clusters))}
    k = len(labels)
    table = np.zeros((len(names), k, k + 1), dtype=np.int64)
    for t, p, c in zip(truth, predicted, clusters, strict=True):
        table[names[c], index[t], index.get(p, k)] += 1
    return table


def _scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, macro-F1 and per-class F1 of (..., K, K+1) confusion matrices."""
    k = confusion.shape[-2]
    tp = np.diagonal(confusion[..., :k], axis1=-2, axis2=-1).astype(np.float64)
    predicted = confusion[..., :k].sum(axis=-2)
    actual = confusion.sum(axis=-1)
    denominator = predicted + actual
    f1 = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    total = confusion.sum(axis=(-2, -1))
    return {
        "accuracy": tp.sum(axis=-1) / np.maximum(total, 1),
        "macro_f1": f1.mean(axis=-1),
        "f1": f1,
    }


def _weights(table: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, documents) draw counts: each class's documents resampled with
    replacement among themselves (a document's class is its sentences' true label)."""
    rng = np.random.default_rng(seed)
    classes = table.sum(axis=2).argmax(axis=1)
    weights = np.zeros((resamples, len(table)))
    rows = np.arange(resamples)[:, None]
    for label in np.unique(classes):
        members = np.flatnonzero(classes == label)
        draws = members[rng.integers(0, len(members), size=(resamples, len(members)))]
        np.add.at(weights, (rows, draws), 1.0)
    return weights


def document_bootstrap(
    truth: Sequence[str],
    predicted: Sequence[str],
    documents: Sequence[str],
    labels: Sequence[str],
    resamples: int = 2000,
    seed: int = 0,
) -> dict:
    """Point values and 95% percentile intervals of accuracy, macro-F1 and each
    class's F1, resampling ``documents``."""
    table = _confusions(truth, predicted, documents, labels)
    weights = _weights(table, resamples, seed)
    resampled = np.einsum("rd,dij->rij", weights, table)
    point = _scores(table.sum(axis=0))
    sample = _scores(resampled)

    def interval(values: np.ndarray) -> list[float]:
        low, high = np.percentile(values, [2.5, 97.5])
        return [float(low), float(high)]

    return {
        "documents": len(table),
        "accuracy": float(point["accuracy"]),
        "accuracy_ci95": interval(sample["accuracy"]),
        "macro_f1": float(point["macro_f1"]),
        "macro_f1_ci95": interval(sample["macro_f1"]),
        "f1": {label: float(point["f1"][i]) for i, label in enumerate(labels)},
        "f1_ci95": {label: interval(sample["f1"][:, i]) for i, label in enumerate(labels)},
    }


def paired_difference(
    truth: Sequence[str],
    a: Sequence[str],
    b: Sequence[str],
    documents: Sequence[str],
    labels: Sequence[str],
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """macro-F1(a) - macro-F1(b) with a 95% interval from the same document resamples
    for both systems (paired), so the gap's noise is not counted twice."""
    return _paired_difference("macro_f1", truth, a, b, documents, labels, resamples, seed)


def paired_accuracy_difference(
    truth: Sequence[str],
    a: Sequence[str],
    b: Sequence[str],
    documents: Sequence[str],
    labels: Sequence[str],
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """accuracy(a) - accuracy(b), paired on the same document resamples (genre.py: a
    test set of four classes, where macro-F1 over five labels means little)."""
    return _paired_difference("accuracy", truth, a, b, documents, labels, resamples, seed)


def _paired_difference(
    metric: str,
    truth: Sequence[str],
    a: Sequence[str],
    b: Sequence[str],
    documents: Sequence[str],
    labels: Sequence[str],
    resamples: int,
    seed: int,
) -> dict[str, float]:
    """``metric``(a) - ``metric``(b), both scored on the same document resamples."""
    table_a = _confusions(truth, a, documents, labels)
    table_b = _confusions(truth, b, documents, labels)
    weights = _weights(table_a, resamples, seed)
    sample = (
        _scores(np.einsum("rd,dij->rij", weights, table_a))[metric]
        - _scores(np.einsum("rd,dij->rij", weights, table_b))[metric]
    )
    point = float(_scores(table_a.sum(axis=0))[metric] - _scores(table_b.sum(axis=0))[metric])
    low, high = np.percentile(sample, [2.5, 97.5])
    return {"difference": point, "ci95_low": float(low), "ci95_high": float(high)}
