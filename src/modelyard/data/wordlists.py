"""Extra training text from word-frequency lists (``data.word_lists``).

394 Danish training sentences leave most Danish words unseen. The ``wordfreq``
package (code Apache-2.0; data CC BY-SA 4.0, built from Wikipedia, subtitles,
news, books, web text and more, see its README) ships frequency lists for Danish,
Swedish and Bokmål (no Nynorsk). Sampling words by frequency into short
pseudo-sentences gives the model those words' character n-grams in roughly the
proportions running text has. They join the training split only: validation and
test stay real sentences from whole held-out documents.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from modelyard.data.text import TextSplit, as_text_array
from modelyard.errors import ConfigError

TOP_WORDS = 20000
"""Words taken from each list, most frequent first."""


def _words(language: str) -> tuple[list[str], np.ndarray]:
    """The ``TOP_WORDS`` most frequent alphabetic words of ``language`` and their
    normalised frequencies."""
    try:
        import wordfreq
    except ImportError:
        raise ConfigError(
            "data.word_lists needs the wordfreq package: pip install 'modelyard[train]'"
        ) from None
    if language not in wordfreq.available_languages(wordlist="small"):
        raise ConfigError(
            f"data.word_lists: wordfreq has no list for '{language}'; it has "
            + ", ".join(sorted(wordfreq.available_languages(wordlist="small")))
        )
    words = [w for w in wordfreq.top_n_list(language, TOP_WORDS) if w.isalpha()]
    frequencies = np.array([wordfreq.word_frequency(w, language) for w in words])
    return words, frequencies / frequencies.sum()


def word_list_sentences(
    word_lists: Mapping[str, str],
    class_names: tuple[str, ...],
    per_label: int,
    seed: int,
) -> TextSplit:
    """``per_label`` pseudo-sentences of 3-12 frequency-sampled words for each
    ``label -> wordfreq language`` in ``word_lists``; group ``wordfreq:<language>``."""
    unknown = sorted(set(word_lists) - set(class_names))
    if unknown:
        raise ConfigError(
            f"data.word_lists names label(s) {', '.join(unknown)} that are not classes "
            f"({', '.join(class_names)})"
        )
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    labels: list[int] = []
    groups: list[str] = []
    for label, language in sorted(word_lists.items()):
        words, p = _words(language)
        lengths = rng.integers(3, 13, size=per_label)
        drawn = rng.choice(len(words), size=int(lengths.sum()), p=p)
        start = 0
        for length in lengths:
            texts.append(" ".join(words[i] for i in drawn[start : start + length]))
            start += int(length)
        labels += [class_names.index(label)] * per_label
        groups += [f"wordfreq:{language}"] * per_label
    return TextSplit(
        as_text_array(texts), np.asarray(labels, dtype=np.int64), as_text_array(groups)
    )
