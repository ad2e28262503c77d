"""Reference profiles of text models: per-text summaries instead of pixel statistics.

Same layout as :func:`modelyard.monitor.profile.build_reference_profile` (features,
predictions, embedding projection), so drift monitoring treats both kinds alike.
The per-text summaries are :func:`modelyard.monitor.summaries.text_summaries`, the
ones the server logs, so served traffic and the reference compare like with like.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modelyard.monitor.profile import PROFILE_VERSION, _describe, fit_projection, project
from modelyard.monitor.summaries import text_summaries


def build_text_profile(
    texts: Sequence[str],
    probabilities: np.ndarray,
    embeddings: np.ndarray,
    label_names: tuple[str, ...],
) -> dict[str, Any]:
    """Summarise texts (already sampled) and the model's outputs on them."""
    predicted = probabilities.argmax(axis=1)
    projection = fit_projection(embeddings)
    projected = project(embeddings, projection)
    counts = np.bincount(predicted, minlength=len(label_names))
    return {
        "version": PROFILE_VERSION,
        "kind": "text",
        "samples": len(texts),
        "features": {name: _describe(v) for name, v in text_summaries(list(texts)).items()},
        "predictions": {
            "label_distribution": {
                label: float(c / counts.sum()) for label, c in zip(label_names, counts, strict=True)
            },
            "confidence": _describe(probabilities.max(axis=1)),
        },
        "embedding": {
            "projection": projection,
            "projected_sample": np.round(projected, 6).tolist(),
        },
    }
