from __future__ import annotations

import json

import numpy as np

from modelyard.monitor.profile import build_reference_profile, image_summaries, project


def test_summaries_see_ink_on_any_background() -> None:
    dark = np.zeros((1, 10, 10, 1), np.uint8)
    dark[0, 3:7, 3:7] = 255
    light = 255 - dark
    for images in (dark, light):
        assert image_summaries(images)["ink_fraction"][0] == 0.16


def test_profile_is_json_and_projection_is_reusable() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (300, 8, 8, 1), dtype=np.uint8)
    probs = rng.dirichlet(np.ones(3), 300).astype(np.float32)
    embeddings = rng.normal(size=(300, 12)).astype(np.float32)
    profile = build_reference_profile(images, probs, embeddings, ("a", "b", "c"), max_samples=100)
    again = json.loads(json.dumps(profile))
    assert again["samples"] == 100
    assert abs(sum(again["predictions"]["label_distribution"].values()) - 1) < 1e-9
    projected = project(embeddings[:5], again["embedding"]["projection"])
    assert projected.shape == (5, 4)
