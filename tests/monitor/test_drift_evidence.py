"""Evidence on a real (tiny) digits model: injected drift is caught, and windows of
held-out in-distribution images rarely raise a false alarm."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from tests.monitor.conftest import HeldOut, take

from modelyard.monitor.drift import WindowData, run_checks

pytestmark = pytest.mark.slow

WINDOW = 200
TRIALS = 40
"""Seeded windows for the false-alarm rate (benchmarks/monitor measures detection on 40 too)."""
DETECTION_TRIALS = 5


def alarms(
    held_out: HeldOut,
    data: WindowData,
    pick: Callable[[np.random.Generator], np.ndarray],
    trials: int,
    check: str | None = None,
) -> int:
    """In how many seeded windows the verdict (or one ``check``) signals drift."""
    profile = held_out.bundle.reference_profile
    count = 0
    for seed in range(trials):
        checks = run_checks(profile, take(data, pick(np.random.default_rng(seed))))
        count += any(c.drift for c in checks if check is None or c.name == check)
    return count


def test_in_distribution_windows_raise_at_most_5_percent_false_alarms(held_out: HeldOut) -> None:
    data = held_out.observe(held_out.images)
    n = len(held_out.images)
    false_alarms = alarms(held_out, data, lambda rng: rng.choice(n, WINDOW, replace=False), TRIALS)
    assert false_alarms <= 0.05 * TRIALS, f"{false_alarms} false alarms in {TRIALS} trials"


@pytest.mark.parametrize(
    "name, transform",
    [
        ("inverted", lambda images: 255 - images),
        ("shifted one pixel right", lambda images: np.roll(images, 1, axis=2)),
        (
            "brighter by 40",
            lambda images: np.clip(images.astype(int) + 40, 0, 255).astype(np.uint8),
        ),
    ],
)
def test_corrupted_images_are_detected(
    held_out: HeldOut, name: str, transform: Callable[[np.ndarray], np.ndarray]
) -> None:
    data = held_out.observe(transform(held_out.images))
    n = len(held_out.images)
    pick = lambda rng: rng.choice(n, WINDOW, replace=False)  # noqa: E731
    detected = alarms(held_out, data, pick, DETECTION_TRIALS)
    assert detected == DETECTION_TRIALS, f"{name} images detected in {detected} windows"


def test_a_changed_class_mix_is_detected(held_out: HeldOut) -> None:
    """Half the traffic is suddenly digits 0-2 (normally about 30%)."""
    data = held_out.observe(held_out.images)
    few = np.flatnonzero(held_out.labels < 3)
    n = len(held_out.images)

    def pick(rng: np.random.Generator) -> np.ndarray:
        return np.concatenate(
            [rng.choice(few, WINDOW // 2, replace=False), rng.choice(n, WINDOW // 2, replace=False)]
        )

    detected = alarms(held_out, data, pick, DETECTION_TRIALS, check="labels")
    assert detected == DETECTION_TRIALS
