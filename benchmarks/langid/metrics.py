"""Scores of one detector on one set of sentences: the figures RESULTS.md reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from labels import LABELS
from sklearn.metrics import accuracy_score, f1_score

from modelyard.evaluate import LENGTH_BUCKETS, word_counts

BUCKETS: tuple[str, ...] = tuple(name for name, _, _ in LENGTH_BUCKETS)


def length_buckets(texts: Sequence[str]) -> list[str]:
    """Each sentence's length bucket, counted exactly as modelyard's evaluation counts
    words (tokens holding a letter or digit; a text with none counts as one word)."""
    words = np.maximum(word_counts(texts), 1)
    names = []
    for count in words:
        for name, low, high in LENGTH_BUCKETS:
            if count >= low and (high is None or count <= high):
                names.append(name)
                break
    return names


def quality(texts: Sequence[str], truth: Sequence[str], predicted: Sequence[str]) -> dict:
    """Accuracy, macro-F1 over the five labels, per-class F1 and, per length bucket,
    the number of sentences, accuracy and macro-F1 over the labels present in it."""
    if not (len(texts) == len(truth) == len(predicted)):
        raise ValueError(f"{len(texts)} texts, {len(truth)} labels, {len(predicted)} predictions")
    per_class = f1_score(truth, predicted, labels=list(LABELS), average=None, zero_division=0)
    buckets = np.array(length_buckets(texts))
    truth_a, pred_a = np.asarray(truth), np.asarray(predicted)
    by_length = {}
    for bucket in BUCKETS:
        mask = buckets == bucket
        if not mask.any():
            continue
        present = [label for label in LABELS if label in set(truth_a[mask])]
        by_length[bucket] = {
            "n": int(mask.sum()),
            "accuracy": float(accuracy_score(truth_a[mask], pred_a[mask])),
            "macro_f1": float(
                f1_score(
                    truth_a[mask], pred_a[mask], labels=present, average="macro", zero_division=0
                )
            ),
        }
    return {
        "n": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(
            f1_score(truth, predicted, labels=list(LABELS), average="macro", zero_division=0)
        ),
        "f1": {label: float(score) for label, score in zip(LABELS, per_class, strict=True)},
        "by_length": by_length,
    }


def speed(
    n: int,
    seconds: float,
    cpu_seconds: float,
    latencies_us: Sequence[float] | None = None,
) -> dict:
    """Sentences per wall second and per CPU second over a timed pass, and per-call
    latency percentiles."""
    result: dict[str, float] = {
        "sentences_per_s": n / seconds if seconds > 0 else float("inf"),
        "sentences_per_cpu_s": n / cpu_seconds if cpu_seconds > 0 else float("inf"),
    }
    if latencies_us:
        p50, p99 = np.percentile(np.asarray(latencies_us), [50, 99])
        result.update({"latency_p50_us": float(p50), "latency_p99_us": float(p99)})
    return result


def confusions(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, dict[str, int]]:
    """Counts of truth -> predicted label, for the cross-genre table."""
    table: dict[str, dict[str, int]] = {}
    for t, p in zip(truth, predicted, strict=True):
        table.setdefault(t, {}).setdefault(p, 0)
        table[t][p] += 1
    return table


def _macro_f1_rows(truth: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """Macro-F1 of each row of (B, N) integer label arrays, over k classes."""
    scores = np.zeros(truth.shape[0])
    for c in range(k):
        tp = ((truth == c) & (predicted == c)).sum(axis=1)
        fp = ((truth != c) & (predicted == c)).sum(axis=1)
        fn = ((truth == c) & (predicted != c)).sum(axis=1)
        denominator = 2 * tp + fp + fn
        scores += np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    return scores / k


def macro_f1_difference(
    truth: Sequence[str],
    a: Sequence[str],
    b: Sequence[str],
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """macro-F1(a) - macro-F1(b) on the same sentences, with a 95% paired-bootstrap
    interval (sentences resampled with replacement), so a small gap can be told
    from the noise of a 3,000-sentence test set."""
    index = {label: i for i, label in enumerate(LABELS)}
    t = np.array([index[x] for x in truth])
    pa = np.array([index[x] for x in a])
    pb = np.array([index[x] for x in b])
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples // 200):
        rows = rng.integers(0, len(t), size=(200, len(t)))
        diffs.append(
            _macro_f1_rows(t[rows], pa[rows], len(LABELS))
            - _macro_f1_rows(t[rows], pb[rows], len(LABELS))
        )
    sample = np.concatenate(diffs)
    point = _macro_f1_rows(t[None], pa[None], len(LABELS))[0]
    point -= _macro_f1_rows(t[None], pb[None], len(LABELS))[0]
    low, high = np.percentile(sample, [2.5, 97.5])
    return {"difference": float(point), "ci95_low": float(low), "ci95_high": float(high)}
