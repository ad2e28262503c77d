"""Temperature fitting and ECE (modelyard.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.calibration import expected_calibration_error, fit_temperature, softmax


def _sampled(temperature: float, n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits / temperature): calibrated at T."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 3.0, size=(n, 4))
    probabilities = softmax(logits, temperature)
    labels = np.array([rng.choice(4, p=row) for row in probabilities])
    return logits, labels


def test_fit_temperature_recovers_the_generating_one() -> None:
    logits, labels = _sampled(temperature=2.5)
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.12)


def test_ece_is_small_when_calibrated_and_large_when_overconfident() -> None:
    logits, labels = _sampled(temperature=2.5)
    calibrated = expected_calibration_error(softmax(logits, 2.5), labels)
    overconfident = expected_calibration_error(softmax(logits, 0.5), labels)
    assert calibrated < 0.03 < 0.1 < overconfident
    # Always-right, always-certain predictions have no calibration error.
    certain = np.eye(3)[[0, 1, 2, 1]]
    assert expected_calibration_error(certain, np.array([0, 1, 2, 1])) == 0.0


def test_no_examples_is_an_error() -> None:
    with pytest.raises(ValueError, match="no examples"):
        fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
