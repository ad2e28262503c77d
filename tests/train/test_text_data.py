"""Text training batches (modelyard.train.text_data): punctuation dropout."""

from __future__ import annotations

import numpy as np
from tests.text_fixtures import SENTENCES

from modelyard.data.text import TextSplit
from modelyard.features.text import TextSpec, encode_texts
from modelyard.train.text_data import _Collate


def _split(texts: list[str]) -> TextSplit:
    n = len(texts)
    return TextSplit(np.array(texts, dtype=object), np.zeros(n, np.int64), np.array(["f"] * n))


def test_punctuation_dropout_strips_about_that_share_and_varies_per_batch() -> None:
    texts = [f"Ord nummer {i}, og så videre." for i in range(400)]
    spec = TextSpec()
    with_punct = encode_texts(texts, spec).ids
    collate = _Collate(_split(texts), spec, punctuation_dropout=0.5, seed=3)
    first = collate(list(range(400)))[0].numpy()
    changed = (first != with_punct).any(axis=1)
    assert 150 < changed.sum() < 250  # ~half of 400
    second = collate(list(range(400)))[0].numpy()
    assert ((second != with_punct).any(axis=1) != changed).any()  # a new draw per batch
    # The same seed draws the same texts: a training run is reproducible.
    again = _Collate(_split(texts), spec, punctuation_dropout=0.5, seed=3)(list(range(400)))
    assert np.array_equal(again[0].numpy(), first)


def test_no_dropout_encodes_exactly_what_prediction_encodes() -> None:
    texts = [text for sentences in SENTENCES.values() for text in sentences[:4]]
    ids, labels = _Collate(_split(texts), TextSpec())(list(range(len(texts))))
    assert np.array_equal(ids.numpy(), encode_texts(texts, TextSpec()).ids)
    assert labels.dtype.is_floating_point is False
