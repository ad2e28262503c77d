"""Compact per-input summaries for text, the counterpart of ``profile.image_summaries``.

The prediction log stores these instead of the raw input, and drift tests compare
their distributions with the bundle's reference profile. Standard library and numpy
only, so the server can compute them on the request path.
"""

from __future__ import annotations

import unicodedata

import numpy as np

TEXT_FEATURES = (
    "length_chars",
    "length_words",
    "letter_share",
    "digit_share",
    "punctuation_share",
    "non_latin_share",
)


def _is_latin(char: str) -> bool:
    # unicodedata names Latin letters "LATIN SMALL LETTER A" etc.; a missing name
    # (unassigned code point) counts as non-Latin.
    return unicodedata.name(char, "").startswith("LATIN")


def _summarise(text: str) -> tuple[float, ...]:
    chars = len(text)
    letters = digits = punctuation = non_latin = 0
    for char in text:
        if char.isalpha():
            letters += 1
            if not _is_latin(char):
                non_latin += 1
        elif char.isdigit():
            digits += 1
        elif unicodedata.category(char).startswith("P"):
            punctuation += 1
    # Shares of all characters (not of letters), so an empty text is 0 everywhere.
    denominator = max(chars, 1)
    return (
        float(chars),
        float(len(text.split())),
        letters / denominator,
        digits / denominator,
        punctuation / denominator,
        non_latin / max(letters, 1),
    )


def text_summaries(texts: list[str]) -> dict[str, np.ndarray]:
    """Per-text statistics: length in characters and words, and character-class shares.

    ``letter_share``, ``digit_share`` and ``punctuation_share`` are shares of all
    characters; ``non_latin_share`` is the share of *letters* outside the Latin
    script (Cyrillic, Greek, CJK, Arabic, ...), so a language the model never saw
    moves it even when the text is as long and as punctuated as usual.
    """
    rows = np.array([_summarise(t) for t in texts], dtype=np.float64).reshape(
        -1, len(TEXT_FEATURES)
    )
    return {name: rows[:, i] for i, name in enumerate(TEXT_FEATURES)}
