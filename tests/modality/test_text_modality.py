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


def test_v1_answer_below_the_bundles_min_confidence_is_its_low_confidence_label() -> None:
    import orjson

    from modelyard.features.text import TextSpec
    from modelyard.modality.base import Batch
    from modelyard.modality.text import TextNotes

    kind = modality_for("text")
    texts = ["hej", "jo"]
    probabilities = np.array([[0.9, 0.1], [0.5, 0.5]], dtype=np.float32)

    def labels(spec: TextSpec, request: float | None = None) -> list[str]:
        notes = TextNotes(np.zeros(2, dtype=bool), request)
        batch = Batch(np.zeros((2, 1), np.int64), texts, notes)
        body = kind.encode_v1(batch, probabilities, ("da", "sv"), "m", "1", "r", spec)
        return [p["label"] for p in orjson.loads(body)["predictions"]]

    assert labels(TextSpec()) == ["da", "da"]
    assert labels(TextSpec(min_confidence=0.6)) == ["da", "unknown"]
    assert labels(TextSpec(min_confidence=0.6, low_confidence_label="other")) == ["da", "other"]
    # A request's own threshold wins over the served one, both ways.
    assert labels(TextSpec(min_confidence=0.6), request=0.0) == ["da", "da"]
    assert labels(TextSpec(), request=0.95) == ["unknown", "unknown"]
    # Bundles written before the setting existed read as "never abstain".
    assert TextSpec.from_dict({"kind": "text", "buckets": 8}).min_confidence == 0.0


def test_answer_rule_is_the_threshold_the_answer_used_and_none_when_it_relabels_nothing() -> None:
    from modelyard.features.text import TextSpec
    from modelyard.modality.base import AnswerRule, Batch
    from modelyard.modality.text import TextNotes

    kind = modality_for("text")

    def batch(request: float | None = None) -> Batch:
        return Batch(np.zeros((1, 1), np.int64), ["hej"], TextNotes(np.zeros(1, bool), request))

    served = TextSpec(min_confidence=0.6, low_confidence_label="other")
    assert kind.answer_rule(batch(), served) == AnswerRule(0.6, "other")
    assert kind.answer_rule(batch(0.8), served) == AnswerRule(0.8, "other")  # the /v1 request's
    assert kind.answer_rule(batch(0.8), served, requested=0.3) == AnswerRule(0.3, "other")  # v2
    assert kind.answer_rule(batch(0.0), served) is None  # the request asked for top classes
    assert kind.answer_rule(batch(), TextSpec()) is None  # no threshold served
    assert kind.thresholded and not modality_for("image").thresholded
    assert modality_for("image").answer_rule(batch(), served) is None
    rule = AnswerRule(0.6, "unknown")
    served_labels = [rule.served("da", c) for c in (0.6, 0.59, float("nan"))]
    assert served_labels == ["da", "unknown", "unknown"]


def test_the_text_config_becomes_the_bundles_text_spec_field_for_field() -> None:
    """``text.*`` and TextSpec name the same fields with the same defaults: a bundle
    read without a newer key (``TextSpec.from_dict``) gets what training would give."""
    from dataclasses import fields

    from modelyard.config import compose_config
    from modelyard.config.schema import TextConfig
    from modelyard.features.text import TextSpec

    assert [f.name for f in fields(TextConfig)] == [f.name for f in fields(TextSpec)]
    cfg = compose_config(["task=langid_nordic"])
    cfg.text = TextConfig()
    assert modality_for("text").input_spec(cfg) == TextSpec()
    changed = {"lowercase": False, "ngram_max": 3, "buckets": 1000, "min_confidence": 0.4}
    cfg.text = TextConfig(**changed, low_confidence_label="other")
    assert modality_for("text").input_spec(cfg) == TextSpec(**changed, low_confidence_label="other")
