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
_PUNCTUATION = re.compile(r"[^\w\s]|_")
# Multiply-xor hashing constants (64-bit, odd): FNV-1a's prime and splitmix64's mixers.
_PRIME = np.uint64(0x100000001B3)
_SEED = np.uint64(0xCBF29CE484222325)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
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
    min_confidence: float = 0.0
    """Answers below this confidence become ``low_confidence_label`` (0: never); not
    preprocessing, but the bundle's text answer policy, read by server and Predictor."""
    low_confidence_label: str = "unknown"

    def __post_init__(self) -> None:
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise DataError(f"bad n-gram range {self.ngram_min}..{self.ngram_max}")
        if self.buckets < 1 or self.max_chars < 1:
            raise DataError("buckets and max_chars must be at least 1")

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
        # str.split() cuts at exactly what re's \s matches (str.isspace), 4x faster than a
        # regex sub; the runs at either end that it drops, strip() drops below anyway.
        joined = " ".join(joined.split())
    parts = joined.split(_SEPARATOR)
    if spec.collapse_whitespace:
        parts = [p.strip(" ") for p in parts]
    return parts


def strip_punctuation(texts: Sequence[str]) -> list[str]:
    """Each text with its punctuation and symbols turned into spaces; a text with
    nothing else (``"***"``, ``"?!"``) is kept whole, so it never becomes empty."""
    out = []
    for text in texts:
        stripped = _PUNCTUATION.sub(" ", text)
        out.append(stripped if stripped.strip() else text)
    return out


def _round_width(width: int) -> int:
    return max(MIN_WIDTH, 1 << max(width - 1, 0).bit_length())


def _codepoints(texts: list[str], spec: TextSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded codepoints [N, C] (uint64), used lengths [N] and full lengths [N]."""
    border = 1 if spec.word_boundaries else 0
    if len(texts) == 1:  # one text (a served request): no row bookkeeping
        full = np.array([len(texts[0])], dtype=np.int64)
        return _one_codepoints(texts[0][: spec.max_chars], border, full)
    full = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    kept = np.minimum(full, spec.max_chars)
    if (full > spec.max_chars).any():
        texts = [t[: spec.max_chars] for t in texts]
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


def _one_codepoints(
    text: str, border: int, full: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_codepoints`` for a single (already cut) text."""
    used = len(text) + 2 * border
    matrix = np.zeros((1, _round_width(used)), dtype=np.uint64)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    matrix[0, border : border + len(codes)] = codes
    if border:
        matrix[0, 0] = matrix[0, used - 1] = 32
    return matrix, np.array([used], dtype=np.int64), full


def _finish(hashes: np.ndarray, n: int | np.ndarray, buckets: int) -> np.ndarray:
    """Mix a rolling hash (and the n-gram length: one, or uint64 one per hash) into a
    bucket id."""
    h = hashes ^ (n if isinstance(n, np.ndarray) else np.uint64(n))
    h = (h ^ (h >> np.uint64(30))) * _MIX1
    h = (h ^ (h >> np.uint64(27))) * _MIX2
    h ^= h >> np.uint64(31)
    if buckets & (buckets - 1) == 0:  # a power of two: the same remainder, no division
        return (h & np.uint64(buckets - 1)).astype(np.int64)
    return (h % np.uint64(buckets)).astype(np.int64)


def encode_texts(texts: Sequence[str], spec: TextSpec) -> EncodedTexts:
    """Normalise, cut at ``max_chars`` and hash character n-grams of every text.

    Empty texts (after normalisation) are encoded too, as only boundary n-grams or
    only padding; callers that must refuse them check ``lengths == 0``.
    """
    normalised = normalise_texts(list(texts), spec)
    matrix, used, full = _codepoints(normalised, spec)
    n_texts, width = matrix.shape
    if n_texts == 1:
        return _encode_one(matrix[0], int(used[0]), full, spec)
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
    return EncodedTexts(
        ids=ids.reshape(n_texts, spec.orders * width),
        lengths=full,
        truncated=full > spec.max_chars,
    )


def _encode_one(codes: np.ndarray, used: int, full: np.ndarray, spec: TextSpec) -> EncodedTexts:
    """``encode_texts`` for one text (a served request): the valid n-grams of every
    order are mixed into bucket ids by one ``_finish`` call, since for one short text
    numpy's per-call cost, not the arithmetic, is the time (5 calls: ~40 µs, 1: ~8)."""
    width = codes.shape[0]
    pieces: list[np.ndarray] = []
    counts: list[int] = []
    with np.errstate(over="ignore"):
        rolling = (codes ^ _SEED) * _PRIME
        for n in range(1, spec.ngram_max + 1):
            if n > 1:  # extend every (n-1)-gram by the next character
                rolling = (rolling[:-1] ^ codes[n - 1 :]) * _PRIME
            if n >= spec.ngram_min:
                counts.append(max(used - n + 1, 0))
                pieces.append(rolling[: counts[-1]])
        grams = np.repeat(np.arange(spec.ngram_min, spec.ngram_max + 1, dtype=np.uint64), counts)
        hashed = _finish(np.concatenate(pieces), grams, spec.buckets)
    ids = np.full((spec.orders, width), spec.pad_id, dtype=np.int64)
    start = 0
    for order, count in enumerate(counts):
        ids[order, :count] = hashed[start : start + count]
        start += count
    return EncodedTexts(
        ids=ids.reshape(1, spec.orders * width), lengths=full, truncated=full > spec.max_chars
    )
