"""data.word_lists: frequency-sampled pseudo-sentences join the training split only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.text_fixtures import write_ud_fixture

from modelyard.config import compose_config
from modelyard.data import load_text_dataset
from modelyard.data.wordlists import word_list_sentences
from modelyard.errors import ConfigError

pytest.importorskip("wordfreq")


def test_pseudo_sentences_are_frequency_sampled_and_seeded() -> None:
    classes = ("da", "sv", "nb", "nn", "other")
    extra = word_list_sentences({"da": "da", "sv": "sv"}, classes, 200, seed=0)
    assert len(extra) == 400 and extra.labels.tolist() == [0] * 200 + [1] * 200
    assert set(extra.groups) == {"wordfreq:da", "wordfreq:sv"}
    words = [w for text in extra.texts[:200] for w in text.split()]
    assert all(3 <= len(t.split()) <= 12 for t in extra.texts)
    # Frequency-weighted: the commonest Danish words dominate, as in running text.
    assert words.count("og") > words.count("hvorfor") and "og" in words
    again = word_list_sentences({"da": "da", "sv": "sv"}, classes, 200, seed=0)
    assert list(again.texts) == list(extra.texts)
    with pytest.raises(ConfigError, match="no list for 'nn'"):
        word_list_sentences({"nn": "nn"}, classes, 1, seed=0)
    with pytest.raises(ConfigError, match=r"label\(s\) xx"):
        word_list_sentences({"xx": "da"}, classes, 1, seed=0)


def test_only_the_training_split_grows(tmp_path: Path) -> None:
    folder = write_ud_fixture(tmp_path)
    base = ["task=langid_nordic", f"data.path={folder}"]
    plain = load_text_dataset(compose_config([*base, "data.word_list_sentences=0"]).data)
    grown = load_text_dataset(compose_config([*base, "data.word_list_sentences=50"]).data)
    assert list(grown.val.texts) == list(plain.val.texts)
    assert list(grown.test.texts) == list(plain.test.texts)
    added = len(grown.train) - len(plain.train)
    assert 0 < added <= 150  # da, sv, nb; a repeat is kept once
    assert grown.fingerprint != plain.fingerprint
    assert np.array_equal(grown.train.labels[: len(plain.train)], plain.train.labels)
