"""Extra training text from word-frequency lists (``data.word_lists``).

394 Danish training sentences leave most Danish words unseen. The ``wordfreq``
package (code Apache-2.0; data CC BY-SA 4.0, built from Wikipedia, subtitles,
news, books, web text and more, see its README) ships frequency lists for Danish,
Swedish and Bokmål (no Nynorsk). Sampling words by frequency into short
pseudo-sentences gives the model those words' character n-grams in roughly the
proportions running text has. They join the training split only: validation and
test stay real sentences from whole held-out documents.

Nynorsk (``nn: nn``): wordfreq's one Norwegian list (``nb``) is mostly Bokmål
with some Nynorsk in it. When both standards are asked for, the Hunspell
dictionaries of both (:mod:`modelyard.data.hunspell`) split it: Bokmål keeps the
list less the words only the Nynorsk dictionary has; Nynorsk takes the words its
dictionary has, less those only the Bokmål one has, and its own exclusive words are
scaled up until they carry as much of the frequency mass as Bokmål's exclusive words
do in the raw list (Nynorsk-only words
are rare there because the list is mostly Bokmål, not because Nynorsk text uses
them less). Without this the Bokmål list pulls Nynorsk text toward Bokmål.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from modelyard.data.hunspell import Forms, dictionary_forms
from modelyard.data.text import TextSplit, as_text_array
from modelyard.errors import ConfigError

TOP_WORDS = 20000
"""Words taken from each list, most frequent first."""
NORWEGIAN = ("nb", "nn")
"""The written standards that share wordfreq's Norwegian (``nb``) list."""
NORWEGIAN_TOP_WORDS = 100000
"""Words taken from the Norwegian list when it is split: Nynorsk-only words are rare
in it (``korleis`` ranks below 50,000)."""


def _frequencies(language: str, top: int) -> tuple[list[str], np.ndarray]:
    """The ``top`` most frequent alphabetic words of wordfreq's ``language`` list and
    their frequencies."""
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
            + " (and nn, next to nb, from the Norwegian list and dictionaries)"
        )
    words = [w for w in wordfreq.top_n_list(language, top) if w.isalpha()]
    return words, np.array([wordfreq.word_frequency(w, language) for w in words])


@lru_cache(maxsize=2)
def _dictionary(standard: str) -> Forms:
    return dictionary_forms(standard)


def _exclusive(standard: str, words: list[str]) -> np.ndarray:
    """Which of ``words`` only ``standard``'s dictionary has (not the other standard's),
    less words English uses more than Norwegian does (the Nynorsk dictionary lists
    some English loans and names in lower case)."""
    import wordfreq

    other = NORWEGIAN[1 - NORWEGIAN.index(standard)]
    only = _dictionary(standard).exclusive(_dictionary(other))
    return np.array(
        [
            w in only and wordfreq.word_frequency(w, "en") < wordfreq.word_frequency(w, "nb")
            for w in words
        ]
    )


def _norwegian(standard: str) -> tuple[list[str], np.ndarray]:
    """``standard``'s share of the Norwegian list (module docstring). Bokmål keeps the
    list as it is (top ``TOP_WORDS``) less the Nynorsk-only words; Nynorsk takes the
    words its dictionary has from a longer stretch of the list, less Bokmål-only ones,
    with its own exclusive words scaled up."""
    if standard == "nb":
        words, frequencies = _frequencies("nb", TOP_WORDS)
        kept = ~_exclusive("nn", words)
        return [w for w, k in zip(words, kept, strict=True) if k], frequencies[kept]
    words, frequencies = _frequencies("nb", NORWEGIAN_TOP_WORDS)
    own = _dictionary(standard)
    mine, theirs = _exclusive(standard, words), _exclusive("nb", words)
    known = np.array([w in own.words or w in own.names for w in words])
    weights = np.where(known & ~theirs, frequencies, 0.0)
    if frequencies[mine].sum() > 0:
        scale = max(1.0, frequencies[theirs].sum() / frequencies[mine].sum())
        weights = np.where(mine, weights * scale, weights)
    kept = weights > 0
    return [w for w, k in zip(words, kept, strict=True) if k], weights[kept]


def _words(language: str, split_norwegian: bool) -> tuple[list[str], np.ndarray]:
    """The words of ``language`` to sample from and their normalised frequencies."""
    if split_norwegian and language in NORWEGIAN:
        words, weights = _norwegian(language)
    else:
        words, weights = _frequencies(language, TOP_WORDS)
    return words, weights / weights.sum()


def word_list_sentences(
    word_lists: Mapping[str, str],
    class_names: tuple[str, ...],
    per_label: int,
    seed: int,
) -> TextSplit:
    """``per_label`` pseudo-sentences of 3-12 frequency-sampled words for each
    ``label -> wordfreq language`` in ``word_lists`` (``nn``: see the module docstring);
    group ``wordfreq:<language>``."""
    unknown = sorted(set(word_lists) - set(class_names))
    if unknown:
        raise ConfigError(
            f"data.word_lists names label(s) {', '.join(unknown)} that are not classes "
            f"({', '.join(class_names)})"
        )
    split_norwegian = "nn" in word_lists.values()
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    labels: list[int] = []
    groups: list[str] = []
    for label, language in sorted(word_lists.items()):
        words, p = _words(language, split_norwegian)
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
