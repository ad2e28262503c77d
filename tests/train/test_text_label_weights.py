"""``data.label_weights`` reaches the text classifier's training loss
(modelyard.train.run)."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.config import compose_config
from modelyard.data.dataset import LabelledDataset
from modelyard.data.text import TextSplit, class_weights
from modelyard.features.text import TextSpec
from modelyard.train import run


def test_the_text_classifier_trains_with_the_multiplied_class_weights() -> None:
    cfg = compose_config(["task=langid_nordic", "+data.label_weights.da=2"], paths=False)
    split = TextSplit(
        np.array(["hej", "tack", "tak", "hei", "ja", "yes"], dtype=object),
        np.array([0, 1, 2, 3, 4, 4]),
        np.array(["g"] * 6, dtype=object),
    )
    names = ("da", "sv", "nb", "nn", "other")
    dataset = LabelledDataset(
        name="t", uri="t", class_names=names, fingerprint="f", train=split, val=split, test=split
    )
    module, _ = run._text_setup(cfg, dataset, TextSpec())
    want = class_weights(split.labels, 5) * np.array([2, 1, 1, 1, 1], dtype=np.float32)
    assert module.class_weights.tolist() == pytest.approx(want.tolist())
