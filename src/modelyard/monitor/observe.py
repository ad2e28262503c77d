"""What one batch of image predictions contributes to the log and to drift tests.

The server calls :func:`observe_images` after inference; tests and benchmarks call
it on offline predictions, so both compare exactly the same quantities with the
reference profile. Numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelyard.monitor.drift import WindowData
from modelyard.monitor.profile import image_summaries, project


def observe_outputs(
    profile: dict[str, Any],
    labels: tuple[str, ...],
    summaries: dict[str, np.ndarray],
    probabilities: np.ndarray,
    embedding: np.ndarray | None,
) -> WindowData:
    """Summaries plus the predicted label, confidence and projected embedding per row."""
    projection_spec = profile.get("embedding", {}).get("projection")
    if embedding is not None and projection_spec:
        projection = project(np.asarray(embedding, dtype=np.float32), projection_spec)
    else:
        projection = np.zeros((len(probabilities), 0), dtype=np.float32)
    predicted = probabilities.argmax(axis=1)
    return WindowData(
        summaries=summaries,
        projection=projection,
        labels=[labels[int(i)] for i in predicted],
        confidences=probabilities.max(axis=1).astype(np.float64),
    )


def observe_images(
    profile: dict[str, Any],
    labels: tuple[str, ...],
    images: np.ndarray,
    probabilities: np.ndarray,
    embedding: np.ndarray | None,
) -> WindowData:
    """``observe_outputs`` for uint8 (N, H, W, C) images."""
    return observe_outputs(profile, labels, image_summaries(images), probabilities, embedding)
