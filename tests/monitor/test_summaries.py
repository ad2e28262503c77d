from __future__ import annotations

import numpy as np

from modelyard.monitor.summaries import TEXT_FEATURES, text_summaries


def test_text_summaries_count_lengths_and_character_classes() -> None:
    s = text_summaries(["Hi, 42!", "Привет мир", ""])
    assert set(s) == set(TEXT_FEATURES)
    assert s["length_chars"].tolist() == [7.0, 10.0, 0.0]
    assert s["length_words"].tolist() == [2.0, 2.0, 0.0]
    assert np.allclose(s["letter_share"], [2 / 7, 9 / 10, 0])
    assert np.allclose(s["digit_share"], [2 / 7, 0, 0])
    assert np.allclose(s["punctuation_share"], [2 / 7, 0, 0])
    assert s["non_latin_share"].tolist() == [0.0, 1.0, 0.0]


def test_accented_latin_is_latin_and_mixed_scripts_are_shares() -> None:
    s = text_summaries(["Crème brûlée", "abc αβγ"])
    assert s["non_latin_share"].tolist() == [0.0, 0.5]


def test_no_texts_give_empty_columns() -> None:
    assert all(len(v) == 0 for v in text_summaries([]).values())
