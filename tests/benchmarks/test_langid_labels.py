"""The language-id benchmark's label mapping (benchmarks/langid/labels.py): how each
detector's answer becomes da/sv/nb/nn/other."""

from __future__ import annotations

import pytest
from benchmarks.langid.labels import (
    DATA_LANGUAGES,
    DETECTOR_FAMILIES,
    LABELS,
    to_label,
)


@pytest.mark.parametrize("family", DETECTOR_FAMILIES)
def test_the_nordic_codes_map_to_their_labels(family: str) -> None:
    assert [to_label(family, code) for code in ("da", "sv", "nb", "nn")] == ["da", "sv", "nb", "nn"]


@pytest.mark.parametrize("family", ["langid", "cld2"])
def test_generic_norwegian_counts_as_bokmal(family: str) -> None:
    # langid.py, py3langid and CLD2 say `no` for (mostly Bokmål) Norwegian.
    assert to_label(family, "no") == "nb"


@pytest.mark.parametrize("family", DETECTOR_FAMILIES)
@pytest.mark.parametrize("code", ["en", "de", "is", "fo", "fi", "nl", "un", "zxx", "", None])
def test_everything_else_and_no_answer_is_other(family: str, code: str | None) -> None:
    assert to_label(family, code) == "other"


def test_an_unreliable_answer_is_other_and_codes_ignore_case() -> None:
    assert to_label("cld2", "nn", reliable=False) == "other"
    assert to_label("lingua", "NN") == "nn"
    assert to_label("lingua", " Sv ") == "sv"


def test_lingua_never_says_generic_norwegian() -> None:
    # lingua names Bokmål and Nynorsk only; a stray `no` must not be guessed into nb.
    assert to_label("lingua", "no") == "other"


def test_an_unknown_detector_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown detector family 'fasttext'"):
        to_label("fasttext", "da")


@pytest.mark.parametrize(
    "peer, family", [("langid", "langid"), ("py3langid", "langid"), ("lingua", "lingua")]
)
def test_restricted_language_sets_can_still_answer_every_label(peer: str, family: str) -> None:
    answers = {to_label(family, code) for code in DATA_LANGUAGES[peer]}
    assert answers == set(LABELS)
