"""data.word_lists: frequency-sampled pseudo-sentences join the training split only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.text_fixtures import write_ud_fixture

from modelyard.config import compose_config
from modelyard.data import load_text_dataset, wordlists
from modelyard.data.hunspell import Forms
from modelyard.data.text import TextSplit
from modelyard.data.wordlists import word_list_sentences
from modelyard.errors import ConfigError

pytest.importorskip("wordfreq")

SHARED = frozenset({"og", "i", "det", "på", "er", "som", "til", "med"})
DICTIONARIES = {
    "nn": Forms(SHARED | {"ikkje", "eg", "dei", "kva"}, frozenset({"oslo"})),
    "nb": Forms(SHARED | {"ikke", "jeg", "de", "hva"}, frozenset({"oslo"})),
}
"""Tiny stand-ins for the Hunspell dictionaries: tests never fetch the real ones."""


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
    with pytest.raises(ConfigError, match="no list for 'fo'"):
        word_list_sentences({"nn": "fo"}, classes, 1, seed=0)
    with pytest.raises(ConfigError, match=r"label\(s\) xx"):
        word_list_sentences({"xx": "da"}, classes, 1, seed=0)


def test_only_the_training_split_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wordlists, "_dictionary", DICTIONARIES.__getitem__)  # offline
    folder = write_ud_fixture(tmp_path)
    base = ["task=langid_nordic", f"data.path={folder}"]
    plain = load_text_dataset(compose_config([*base, "data.word_list_sentences=0"]).data)
    grown = load_text_dataset(compose_config([*base, "data.word_list_sentences=50"]).data)
    assert list(grown.val.texts) == list(plain.val.texts)
    assert list(grown.test.texts) == list(plain.test.texts)
    added = len(grown.train) - len(plain.train)
    assert 0 < added <= 200  # da, sv, nb, nn; a repeat is kept once
    assert grown.fingerprint != plain.fingerprint
    assert np.array_equal(grown.train.labels[: len(plain.train)], plain.train.labels)
    # The added texts, and only they, are marked extra (data.extra_text_weight weighs them).
    assert grown.train.extra_mask.tolist() == [False] * len(plain.train) + [True] * added
    assert not plain.train.extra_mask.any() and not grown.val.extra_mask.any()


def _words_of(extra: TextSplit, label: int) -> list[str]:
    rows = zip(extra.texts, extra.labels, strict=True)
    return [word for text, row_label in rows if row_label == label for word in text.split()]


def test_nynorsk_and_bokmaal_split_the_norwegian_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wordlists, "_dictionary", DICTIONARIES.__getitem__)
    classes = ("da", "sv", "nb", "nn", "other")
    extra = word_list_sentences({"nb": "nb", "nn": "nn"}, classes, 300, seed=0)
    nb, nn = _words_of(extra, 2), _words_of(extra, 3)
    # Each standard keeps its own words and the shared ones, never the other's.
    assert {"ikkje", "eg", "og"} <= set(nn) and not set(nn) & {"ikke", "jeg", "hva"}
    assert {"ikke", "jeg", "og"} <= set(nb) and not set(nb) & {"ikkje", "eg", "kva"}
    # Nynorsk-only words are rare in the mostly-Bokmål list (these four: under 0.1% of
    # the mass of the shared words); scaled to the mass Bokmål-only words have there,
    # they make up a real share of the Nynorsk text.
    nn_share = sum(w in DICTIONARIES["nn"].words - SHARED for w in nn) / len(nn)
    assert nn_share > 0.05
    assert extra.groups[-1] == "wordfreq:nn"
