"""Text reference profiles: per-text summaries and the shared profile layout."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.monitor.text_profile import build_text_profile, text_summaries


def test_text_summaries() -> None:
    s = text_summaries(["Hej 12!", "Привет мир", "..."])
    assert s["chars"].tolist() == [7, 10, 3]
    assert s["words"].tolist() == [2, 2, 1]
    assert s["letters"][0] == pytest.approx(3 / 7) and s["digits"][0] == pytest.approx(2 / 7)
    assert s["punctuation"].tolist() == pytest.approx([1 / 7, 0, 1])
    assert s["non_latin_letters"].tolist() == pytest.approx([0, 9 / 10, 0])


def test_profile_layout_matches_images() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=20).astype(np.float32)
    embeddings = rng.normal(size=(20, 8)).astype(np.float32)
    texts = [f"sætning nummer {i}" for i in range(20)]
    profile = build_text_profile(texts, probabilities, embeddings, ("a", "b", "c"))
    assert profile["kind"] == "text" and profile["samples"] == 20
    assert set(profile) >= {"features", "predictions", "embedding"}
    assert len(profile["features"]["chars"]["sample"]) == 20
    assert sum(profile["predictions"]["label_distribution"].values()) == pytest.approx(1.0)
    assert np.asarray(profile["embedding"]["projected_sample"]).shape == (20, 4)
