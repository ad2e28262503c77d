"""Text preprocessing: normalisation, hashed n-grams, padding and truncation."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from modelyard.errors import DataError
from modelyard.features.text import TextSpec, encode_texts, normalise_texts

SPEC = TextSpec(buckets=1 << 16, max_chars=64)


def _bag(ids: np.ndarray, spec: TextSpec) -> list[int]:
    """The multiset of real ids of one row (padding removed), order-free."""
    return sorted(int(i) for i in ids if i != spec.pad_id)


def test_normalisation_steps() -> None:
    decomposed = unicodedata.normalize("NFD", "Blåbærsyltetøy")
    assert decomposed != "Blåbærsyltetøy"
    assert normalise_texts([decomposed, "  HEJ\t\n  Verden  ", "År 2024: 17 mål"], SPEC) == [
        "blåbærsyltetøy",
        "hej verden",
        "år 0000: 00 mål",
    ]
    raw = TextSpec(nfc=False, lowercase=False, digits=False, collapse_whitespace=False)
    assert normalise_texts([" A  1 "], raw) == [" A  1 "]


def test_equivalent_texts_get_identical_ids() -> None:
    a = encode_texts([unicodedata.normalize("NFD", "Hvad så, Åse?")], SPEC).ids
    b = encode_texts(["hvad  så,\nåse?"], SPEC).ids
    np.testing.assert_array_equal(a, b)


def test_ngram_counts_and_ranges() -> None:
    spec = TextSpec(ngram_min=2, ngram_max=3, buckets=1000, word_boundaries=True)
    encoded = encode_texts(["abc"], spec)  # " abc " has 5 characters
    assert encoded.ids.shape[1] % 2 == 0  # two n-gram orders side by side
    real = _bag(encoded.ids[0], spec)
    assert len(real) == (5 - 2 + 1) + (5 - 3 + 1)
    assert all(0 <= i < 1000 for i in real)
    no_marks = TextSpec(ngram_min=1, ngram_max=1, buckets=1000, word_boundaries=False)
    assert len(_bag(encode_texts(["abc"], no_marks).ids[0], no_marks)) == 3


@pytest.mark.parametrize(
    "spec", [SPEC, TextSpec(ngram_min=2, ngram_max=4, buckets=997, word_boundaries=False)]
)
def test_ids_do_not_depend_on_the_batch(spec: TextSpec) -> None:
    # A lone text takes its own (sliced, not masked) path: it must hash the same.
    texts = ["Kort.", "En noget længere sætning om ingenting i særdeleshed.", "ja", "x" * 90]
    texts += ["   ", "\ud800 lone surrogate", "ø"]
    together = encode_texts(texts, spec)
    for index, text in enumerate(texts):
        alone = encode_texts([text], spec)
        assert _bag(together.ids[index], spec) == _bag(alone.ids[0], spec)
        assert alone.lengths[0] == together.lengths[index]
        assert alone.truncated[0] == together.truncated[index]


def test_hashing_is_stable_across_processes() -> None:
    # Deployed bundles depend on these exact ids: a change to the hash must be a
    # deliberate, versioned one, never an accident (Python's hash() is salted).
    spec = TextSpec(ngram_min=1, ngram_max=2, buckets=1000)
    # " ok ": unigrams " ", "o", "k", " " (the two spaces share an id), bigrams " o",
    # "ok", "k ".
    assert _bag(encode_texts(["ok"], spec).ids[0], spec) == [14, 22, 58, 137, 137, 647, 954]


def test_truncation_is_reported() -> None:
    encoded = encode_texts(["a" * 100, "kort"], SPEC)
    assert encoded.truncated.tolist() == [True, False]
    assert encoded.lengths.tolist() == [100, 4]
    same = encode_texts(["a" * 64], SPEC).ids
    assert _bag(encoded.ids[0], SPEC) == _bag(same[0], SPEC)


def test_odd_input_is_encoded_not_crashed() -> None:
    encoded = encode_texts(["\ud800 lone surrogate", "nul\x00inside", "   "], SPEC)
    assert encoded.lengths.tolist()[2] == 0
    assert encoded.ids.dtype == np.int64 and encoded.ids.shape[0] == 3


def test_spec_round_trip_and_checks() -> None:
    data = SPEC.to_dict()
    assert data["kind"] == "text"
    assert TextSpec.from_dict(data) == SPEC
    assert SPEC.pad_id == SPEC.buckets and SPEC.vocab_size == SPEC.buckets + 1
    with pytest.raises(DataError, match="n-gram range"):
        TextSpec(ngram_min=3, ngram_max=2)


def test_strip_punctuation_keeps_words_and_never_empties_a_text() -> None:
    from modelyard.features.text import strip_punctuation

    texts = ["Hvad så, Allan?", "har du vore med på det med ?", "***", "?!", "e-post_adresse"]
    assert strip_punctuation(texts) == [
        "Hvad så  Allan ",
        "har du vore med på det med  ",
        "***",  # nothing but punctuation: kept whole, so it still has n-grams
        "?!",
        "e post adresse",
    ]
    spec = TextSpec()
    # After whitespace collapsing only the punctuation's n-grams differ.
    assert normalise_texts(strip_punctuation(["Ja, takk."]), spec) == ["ja takk"]
