"""Confidence calibration: one temperature for the logits, and how well it fits (ECE).

A classifier trained with cross-entropy to near-zero training loss is overconfident
on text unlike its training data: its top probability says 0.99 where it is right
nine times in ten. Dividing the logits by a temperature ``T`` fitted on held-out
data (Guo et al., 2017) fixes most of that without changing any argmax, so accuracy
is untouched and a confidence threshold (``text.min_confidence``) means what it says.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probabilities


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    probabilities = softmax(logits, temperature)
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(picked, 1e-12)).mean())


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, low: float = 0.05, high: float = 20.0
) -> float:
    """The temperature minimising the negative log-likelihood of ``labels``.

    The NLL is convex in 1/T, so a golden-section search over log T finds it; a
    bracket of 0.05-20 holds every model seen here by a wide margin.
    """
    if len(labels) == 0:
        raise ValueError("cannot fit a temperature on no examples")
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(60):
        if negative_log_likelihood(logits, labels, float(np.exp(c))) < negative_log_likelihood(
            logits, labels, float(np.exp(d))
        ):
            b, d = d, c
            c = b - ratio * (b - a)
        else:
            a, c = c, d
            d = a + ratio * (b - a)
    return float(np.exp((a + b) / 2.0))


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = 15
) -> float:
    """ECE: the example-weighted mean gap between confidence and accuracy over
    ``bins`` equal-width confidence bins (top-label, as Guo et al. report it)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(float(correct[mask].mean()) - float(confidence[mask].mean()))
    return total / max(len(labels), 1)
