"""Reference profiles of text models: per-text summaries instead of pixel statistics.

Same layout as :func:`modelyard.monitor.profile.build_reference_profile` (features,
predictions, embedding projection), so drift monitoring treats both kinds alike.
Numpy and the standard library only, so the server can summarise traffic the same way.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelyard.monitor.profile import PROFILE_VERSION, _describe, fit_projection, project


def _is_latin(char: str) -> bool:
    # Basic Latin to Latin Extended-B, IPA, and Latin Extended Additional.
    code = ord(char)
    return code < 0x0250 or 0x1E00 <= code < 0x1F00


def text_summaries(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-text length in characters and words, and the share of its characters that
    are letters, digits, punctuation, and letters outside the Latin script."""
    columns: dict[str, list[float]] = {
        name: []
        for name in ("chars", "words", "letters", "digits", "punctuation", "non_latin_letters")
    }
    for text in texts:
        size = max(len(text), 1)
        letters = digits = punctuation = non_latin = 0
        for char in text:
            category = unicodedata.category(char)
            if category[0] == "L":
                letters += 1
                non_latin += not _is_latin(char)
            elif category == "Nd":
                digits += 1
            elif category[0] == "P":
                punctuation += 1
        columns["chars"].append(len(text))
        columns["words"].append(len(text.split()))
        columns["letters"].append(letters / size)
        columns["digits"].append(digits / size)
        columns["punctuation"].append(punctuation / size)
        columns["non_latin_letters"].append(non_latin / size)
    return {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}


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
        "features": {name: _describe(v) for name, v in text_summaries(texts).items()},
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
