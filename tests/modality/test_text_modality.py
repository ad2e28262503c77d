"""The text kind's reference profile: per-text summaries and the shared profile layout."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.modality import modality_for
from modelyard.monitor.summaries import TEXT_FEATURES


def test_profile_layout_matches_images() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=20).astype(np.float32)
    embeddings = rng.normal(size=(20, 8)).astype(np.float32)
    texts = [f"sætning nummer {i}" for i in range(20)]
    profile = modality_for("text").reference_profile(
        texts, probabilities, embeddings, ("a", "b", "c")
    )
    assert profile["kind"] == "text" and profile["samples"] == 20
    assert set(profile) >= {"features", "predictions", "embedding"}
    assert set(profile["features"]) == set(TEXT_FEATURES)
    assert len(profile["features"]["length_chars"]["sample"]) == 20
    assert sum(profile["predictions"]["label_distribution"].values()) == pytest.approx(1.0)
    assert np.asarray(profile["embedding"]["projected_sample"]).shape == (20, 4)
