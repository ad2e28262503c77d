"""What each kind declares so the code outside modelyard.modality need not ask which
kind it holds: config checks, the predictor method, export capabilities, refit, and
how a split is tracked."""

from __future__ import annotations

import re

import numpy as np
import pytest

from modelyard.config import compose_config
from modelyard.data.dataset import ArraySplit
from modelyard.data.text import TextSplit, as_text_array
from modelyard.errors import ConfigError
from modelyard.modality import kinds, modality_for
from modelyard.predictor import Predictor


def test_each_kind_names_its_own_predictor_method() -> None:
    methods = [modality_for(kind).predictor_method for kind in kinds()]
    assert len(set(methods)) == len(methods)
    assert all(callable(getattr(Predictor, method)) for method in methods)
    assert modality_for("image").predictor_method == "predict_images"
    assert modality_for("text").predictor_method == "predict_texts"


def test_export_capabilities_say_why_a_kind_is_refused() -> None:
    image, text, tabular = (modality_for(k) for k in ("image", "text", "tabular"))
    assert image.int8_refusal is None and image.triton_refusal is None
    assert text.int8_refusal is not None and "embedding gather" in text.int8_refusal
    assert text.triton_refusal is not None and "n-gram ids" in text.triton_refusal
    # A kind that declares nothing is refused with the general reason, not let through.
    assert tabular.int8_refusal and tabular.triton_refusal
    assert [kind for kind in kinds() if modality_for(kind).refits] == ["text"]


def test_each_kind_checks_its_own_config() -> None:
    image_cfg = compose_config(["task=digits"])
    text_cfg = compose_config(["task=langid_nordic"])
    modality_for("image").validate_config(image_cfg)
    modality_for("text").validate_config(text_cfg)
    with pytest.raises(ConfigError, match="need a text task"):
        modality_for("image").validate_config(text_cfg)
    with pytest.raises(ConfigError, match=re.escape("task.kind=text needs a text data.source")):
        modality_for("text").validate_config(image_cfg)
    text_cfg.text.ngram_max = 9
    with pytest.raises(ConfigError, match=re.escape("text.ngram_max <= 8")):
        modality_for("text").validate_config(text_cfg)
    image_cfg.model.channels = [8, 8, 8, 8, 8]
    with pytest.raises(ConfigError, match="too many for 8px images"):
        modality_for("image").validate_config(image_cfg)


def test_compose_runs_the_kinds_own_checks() -> None:
    with pytest.raises(ConfigError, match=re.escape("text.buckets must be at least 1")):
        compose_config(["task=langid_nordic", "text.buckets=0"])
    with pytest.raises(ConfigError, match=re.escape("model.channels must be a non-empty list")):
        compose_config(["task=digits", "model.channels=[]"])


def test_a_text_split_is_tracked_as_a_table_and_an_image_split_as_arrays() -> None:
    texts = TextSplit(as_text_array(["hej", "hei"]), np.array([1, 0]), np.array(["a.txt", "b"]))
    tracked = modality_for("text").tracked_split(texts, ("nb", "sv"))
    assert isinstance(tracked.features, dict)
    assert list(tracked.features["text"]) == ["hej", "hei"]
    assert list(tracked.features["label"]) == ["sv", "nb"]
    assert list(tracked.features["source"]) == ["a.txt", "b"]
    images = ArraySplit(np.zeros((2, 8, 8, 1), np.uint8), np.array([0, 1]))
    tracked = modality_for("image").tracked_split(images, ("a", "b"))
    assert tracked.features is images.images and tracked.targets is images.labels
