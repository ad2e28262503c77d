"""Reference profiles: what the training inputs and the model's outputs looked like.

A profile is plain JSON (no pickle) written into every bundle. Drift monitoring
compares a window of served traffic with it: per-feature samples for KS tests,
the label distribution for chi-square, and a PCA projection of the embedding for a
multivariate test. Numpy only, so the server can compute the same summaries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PROFILE_VERSION = 1
PROJECTION_DIMS = 4


def image_summaries(images: np.ndarray) -> dict[str, np.ndarray]:
    """Cheap per-image statistics of uint8 (N, H, W, C) images, on a 0..1 scale.

    ``ink_fraction`` is the share of pixels that differ clearly (more than a quarter
    of the range) from the image's border median, i.e. the background.
    """
    scaled = images.astype(np.float32) / 255.0
    flat = scaled.reshape(scaled.shape[0], -1)
    border = np.concatenate(
        [
            scaled[:, 0].reshape(len(scaled), -1),
            scaled[:, -1].reshape(len(scaled), -1),
            scaled[:, :, 0].reshape(len(scaled), -1),
            scaled[:, :, -1].reshape(len(scaled), -1),
        ],
        axis=1,
    )
    background = np.median(border, axis=1, keepdims=True)
    return {
        "mean_intensity": flat.mean(axis=1),
        "std_intensity": flat.std(axis=1),
        "ink_fraction": (np.abs(flat - background) > 0.25).mean(axis=1),
    }


def fit_projection(embeddings: np.ndarray, dims: int = PROJECTION_DIMS) -> dict[str, list[Any]]:
    """PCA of the embeddings: a mean and ``dims`` principal directions."""
    mean = embeddings.mean(axis=0)
    _, _, vt = np.linalg.svd(embeddings - mean, full_matrices=False)
    return {"mean": mean.tolist(), "components": vt[:dims].tolist()}


def project(embeddings: np.ndarray, projection: dict[str, list[Any]]) -> np.ndarray:
    mean = np.asarray(projection["mean"], dtype=np.float32)
    components = np.asarray(projection["components"], dtype=np.float32)
    return (embeddings - mean) @ components.T


def _describe(values: np.ndarray) -> dict[str, Any]:
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "quantiles": {str(q): float(np.quantile(values, q)) for q in (0.01, 0.25, 0.5, 0.75, 0.99)},
        "sample": [round(float(v), 6) for v in values],
    }


def sample_indices(n: int, max_samples: int = 2000, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded sample of at most ``max_samples`` of ``n`` rows."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, max_samples), replace=False))


def build_reference_profile(
    images: np.ndarray,
    probabilities: np.ndarray,
    embeddings: np.ndarray,
    label_names: tuple[str, ...],
    max_samples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Summarise (a seeded sample of) the training inputs and the model's outputs."""
    keep = sample_indices(images.shape[0], max_samples, seed)
    return build_profile(
        image_summaries(images[keep]), probabilities[keep], embeddings[keep], label_names
    )


def build_profile(
    summaries: dict[str, np.ndarray],
    probabilities: np.ndarray,
    embeddings: np.ndarray,
    label_names: tuple[str, ...],
    kind: str | None = None,
) -> dict[str, Any]:
    """The profile layout every input kind shares: input summaries, the predicted-label
    mix and confidence, and a PCA projection of the embedding."""
    predicted = probabilities.argmax(axis=1)
    projection = fit_projection(embeddings)
    projected = project(embeddings, projection)
    counts = np.bincount(predicted, minlength=len(label_names))
    return {
        "version": PROFILE_VERSION,
        **({"kind": kind} if kind else {}),
        "samples": len(probabilities),
        "features": {name: _describe(v) for name, v in summaries.items()},
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
