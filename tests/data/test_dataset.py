"""One dataset type for every input kind (modelyard.data.dataset.LabelledDataset)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from modelyard.data.dataset import Dataset, LabelledDataset, SourceData
from modelyard.data.split import make_splits
from modelyard.data.text import TextDataset, TextSource, as_text_array, make_text_splits
from modelyard.errors import DataError
from modelyard.modality import modality_for


def _image_dataset() -> Dataset:
    labels = np.repeat(np.arange(2), 20)
    images = np.zeros((40, 2, 2, 1), np.uint8)
    images[:, 0, 0, 0] = np.arange(40)
    return make_splits(SourceData("toy", "mem://toy", images, labels, ("a", "b")), 0.2, 0.2, 0)


def _text_dataset() -> TextDataset:
    texts = as_text_array([f"sentence {i}" for i in range(40)])
    labels = np.repeat(np.arange(2), 20)
    groups = np.array(["f.txt"] * 40, dtype=object)
    source = TextSource("toy", "mem://toy", texts, labels, ("da", "sv"), groups)
    return make_text_splits(source, 0.2, 0.2, seed=0)


@pytest.mark.parametrize("make", [_image_dataset, _text_dataset], ids=["image", "text"])
def test_every_kind_splits_into_the_same_dataset_type(
    make: Callable[[], LabelledDataset[Any]],
) -> None:
    dataset = make()
    assert type(dataset) is LabelledDataset
    for name in ("train", "val", "test"):
        part = dataset.split(name)
        assert part is getattr(dataset, name)
        assert len(part.examples) == len(part.labels) > 0
    with pytest.raises(DataError, match="unknown split 'dev'; choose train, val or test"):
        dataset.split("dev")


def test_a_kinds_examples_are_its_splits_examples() -> None:
    images, texts = _image_dataset(), _text_dataset()
    got = modality_for("image").split_examples(images, "val")
    assert got.examples is images.val.images and got.labels is images.val.labels
    got = modality_for("text").split_examples(texts, "test")
    assert got.examples is texts.test.texts and got.labels is texts.test.labels
