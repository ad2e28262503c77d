"""Text preprocessing: normalisation and hashed character n-grams, numpy only.

Training, export, evaluation, batch prediction and the server all call
:func:`encode_texts` with the bundle's :class:`TextSpec`, so a served prediction
sees exactly the n-gram ids the model trained on.

The work is vectorised over a whole batch: the normalised texts become one padded
codepoint matrix, and every n-gram's hash is computed for all texts at once with a
rolling multiply-xor hash (a Python loop over n-grams would cap prediction at a few
thousand sentences per second). The model input is an int64 matrix ``[N, L]`` of
bucket ids, ``L = (ngram_max - ngram_min + 1) * C`` for ``C`` padded character
positions; slots past a text's end hold :attr:`TextSpec.pad_id`, whose embedding
row is zero, so padding never changes a prediction.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from modelyard.errors import DataError

_SEPARATOR = "\x00"
_DIGIT = re.compile(r"\d")
_SPACE = re.compile(r"\s+")
# Multiply-xor hashing constants (64-bit, odd): FNV-1a's prime and splitmix64's mixers.
_PRIME = np.uint64(0x100000001B3)
_SEED = np.uint64(0xCBF29CE484222325)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
# Characters that end a word for the word features (besides whitespace and padding):
# ASCII punctuation and the quotes and dashes common in Nordic text, so "ikkje," and
# "ikkje" are one word.
_WORD_BREAKS = np.array(
    sorted(
        {ord(c) for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"}
        # guillemets, curly and low quotes, en and em dash, ellipsis, middle dot
        | {
            ord(c)
            for c in "\u00ab\u00bb\u201c\u201d\u201e\u2018\u2019\u201a\u2013\u2014\u2026\u00b7"
        }
    ),
    dtype=np.uint64,
)
_WORD_TAG = 64
"""Added to the n-gram length mixed into a word feature's hash (word unigrams use
65, pairs 66), so the word "i" and the character 1-gram "i" get different buckets."""
MIN_WIDTH = 16
"""Fewest padded character positions; widths are rounded up to a power of two so
requests of similar length share a shape (the server's batcher merges equal shapes)."""


@dataclass(frozen=True)
class TextSpec:
    """How raw text becomes model input; stored in every text bundle."""

    nfc: bool = True
    lowercase: bool = True
    digits: bool = True
    collapse_whitespace: bool = True
    word_boundaries: bool = True
    ngram_min: int = 1
    ngram_max: int = 5
    buckets: int = 262144
    max_chars: int = 512
    word_ngrams: int = 0
    """Also hash whole words (1), and word pairs (2), into the same buckets; 0 (the
    default, and what bundles from before this field hold) adds no word features."""

    def __post_init__(self) -> None:
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise DataError(f"bad n-gram range {self.ngram_min}..{self.ngram_max}")
        if self.buckets < 1 or self.max_chars < 1:
            raise DataError("buckets and max_chars must be at least 1")
        if not 0 <= self.word_ngrams <= 2:
            raise DataError(f"word_ngrams must be 0, 1 or 2, got {self.word_ngrams}")

    @property
    def pad_id(self) -> int:
        """The id of an empty slot: one past the last bucket (a zero embedding row)."""
        return self.buckets

    @property
    def vocab_size(self) -> int:
        """Rows of the embedding table: every bucket plus the padding row."""
        return self.buckets + 1

    @property
    def orders(self) -> int:
        """How many n-gram lengths are used."""
        return self.ngram_max - self.ngram_min + 1

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "text", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextSpec:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class EncodedTexts:
    """What :func:`encode_texts` returns: model input plus what the server reports."""

    ids: np.ndarray
    """int64 [N, L]: hashed n-gram ids, ``pad_id`` where there is none."""
    lengths: np.ndarray
    """int64 [N]: characters of each normalised text, before cutting at max_chars."""
    truncated: np.ndarray
    """bool [N]: the text was longer than max_chars and was cut."""


def normalise_texts(texts: Sequence[str], spec: TextSpec) -> list[str]:
    """Apply the spec's normalisation (not the cut at max_chars) to every text.

    Done on one joined string, so each step is a single C-level call for the batch;
    the separator is neither whitespace nor a digit nor changed by NFC or case
    folding, and is removed from the texts first.
    """
    joined = _SEPARATOR.join(texts)
    if joined.count(_SEPARATOR) != len(texts) - 1:  # a text held the separator itself
        joined = _SEPARATOR.join(t.replace(_SEPARATOR, " ") for t in texts)
    if spec.nfc:
        joined = unicodedata.normalize("NFC", joined)
    if spec.lowercase:
        joined = joined.lower()
    if spec.digits:
        joined = _DIGIT.sub("0", joined)
    if spec.collapse_whitespace:
        joined = _SPACE.sub(" ", joined)
    parts = joined.split(_SEPARATOR)
    if spec.collapse_whitespace:
        parts = [p.strip(" ") for p in parts]
    return parts


def _round_width(width: int) -> int:
    return max(MIN_WIDTH, 1 << max(width - 1, 0).bit_length())


def _codepoints(texts: list[str], spec: TextSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded codepoints [N, C] (uint64), used lengths [N] and full lengths [N]."""
    full = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    kept = np.minimum(full, spec.max_chars)
    if (full > spec.max_chars).any():
        texts = [t[: spec.max_chars] for t in texts]
    border = 1 if spec.word_boundaries else 0
    used = kept + 2 * border
    width = _round_width(int(used.max()) if len(used) else 1)
    # surrogatepass: a lone surrogate (JSON allows one) is a codepoint like any other.
    flat = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    matrix = np.zeros((len(texts), width), dtype=np.uint64)
    if border:
        matrix[:, 0] = 32  # a space marks the first word's start ...
        matrix[np.arange(len(texts)), used - 1] = 32  # ... and the last word's end
    rows = np.repeat(np.arange(len(texts)), kept)
    starts = np.concatenate(([0], np.cumsum(kept)[:-1]))
    cols = np.arange(flat.shape[0]) - np.repeat(starts, kept) + border
    matrix[rows, cols] = flat
    return matrix, used, full


def _finish_raw(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit affects every output bit."""
    h = (h ^ (h >> np.uint64(30))) * _MIX1
    h = (h ^ (h >> np.uint64(27))) * _MIX2
    return h ^ (h >> np.uint64(31))  # type: ignore[no-any-return]


def _finish(hashes: np.ndarray, n: int, buckets: int) -> np.ndarray:
    """Mix a rolling hash (and the n-gram length) into a bucket id."""
    with np.errstate(over="ignore"):
        h = _finish_raw(hashes ^ np.uint64(n))
    return (h % np.uint64(buckets)).astype(np.int64)


def _word_ids(matrix: np.ndarray, spec: TextSpec) -> np.ndarray:
    """Hashed words (and, for ``word_ngrams=2``, adjacent word pairs) of every row:
    int64 [N, word_ngrams * W] for ``W`` the most words in a row, padded with pad_id.

    A word is a maximal run of characters that are neither whitespace, padding nor
    punctuation. Its hash is the wrapping sum of a mix of (character, position in the
    word) over its characters, so a cumulative sum along the row gives every word's
    hash at once: the sum at its end minus the sum before its start.
    """
    n_texts, width = matrix.shape
    breaks = (matrix <= 32) | np.isin(matrix, _WORD_BREAKS)
    column = np.arange(width)
    # Column of the latest break at or before each position (-1: none yet).
    last_break = np.maximum.accumulate(np.where(breaks, column, -1), axis=1)
    offset = (column - last_break).astype(np.uint64)  # 1 for a word's first character
    with np.errstate(over="ignore"):
        mixed = _finish_raw((matrix ^ _SEED) * _PRIME ^ (offset * _MIX1))
        mixed[breaks] = 0
        total = np.cumsum(mixed, axis=1, dtype=np.uint64)
        ends = ~breaks & np.concatenate([breaks[:, 1:], np.ones((n_texts, 1), bool)], axis=1)
        rows, cols = np.nonzero(ends)  # row-major: each row's words in order
        starts = cols - offset[rows, cols].astype(np.int64)  # column before the word
        before = np.where(starts >= 0, total[rows, np.maximum(starts, 0)], np.uint64(0))
        words = total[rows, cols] - before
    per_row = np.bincount(rows, minlength=n_texts)
    most = max(int(per_row.max()) if n_texts else 0, 1)
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    ids = np.full((n_texts, spec.word_ngrams, most), spec.pad_id, dtype=np.int64)
    ids[rows, 0, rank] = _finish(words, _WORD_TAG + 1, spec.buckets)
    if spec.word_ngrams >= 2:
        pair = rows[1:] == rows[:-1]  # this word and the next are in the same text
        with np.errstate(over="ignore"):
            pairs = (words[:-1][pair] ^ _SEED) * _PRIME ^ words[1:][pair]
        ids[rows[:-1][pair], 1, rank[:-1][pair]] = _finish(pairs, _WORD_TAG + 2, spec.buckets)
    return ids.reshape(n_texts, spec.word_ngrams * most)


def encode_texts(texts: Sequence[str], spec: TextSpec) -> EncodedTexts:
    """Normalise, cut at ``max_chars`` and hash character n-grams of every text.

    Empty texts (after normalisation) are encoded too, as only boundary n-grams or
    only padding; callers that must refuse them check ``lengths == 0``.
    """
    normalised = normalise_texts(list(texts), spec)
    matrix, used, full = _codepoints(normalised, spec)
    n_texts, width = matrix.shape
    ids = np.full((n_texts, spec.orders, width), spec.pad_id, dtype=np.int64)
    positions = np.arange(width)
    with np.errstate(over="ignore"):
        rolling = (matrix ^ _SEED) * _PRIME
        for n in range(1, spec.ngram_max + 1):
            if n > 1:  # extend every (n-1)-gram by the next character
                rolling = (rolling[:, :-1] ^ matrix[:, n - 1 :]) * _PRIME
            if n < spec.ngram_min:
                continue
            span = width - n + 1
            valid = positions[:span][None, :] + n <= used[:, None]
            slot = ids[:, n - spec.ngram_min, :span]
            slot[valid] = _finish(rolling[valid], n, spec.buckets)
    flat = ids.reshape(n_texts, spec.orders * width)
    if spec.word_ngrams:
        flat = np.concatenate([flat, _word_ids(matrix, spec)], axis=1)
    return EncodedTexts(
        ids=flat,
        lengths=full,
        truncated=full > spec.max_chars,
    )
