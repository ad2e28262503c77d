"""The vectorised text encoding equals a plain per-text, per-n-gram reference written
from the definition (regex normalisation, Python-int hashing), byte for byte: a
speed change to ``encode_texts`` must not change one id a trained model sees."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from modelyard.features.text import TextSpec, encode_texts

MASK = (1 << 64) - 1
PRIME, SEED = 0x100000001B3, 0xCBF29CE484222325
MIX1, MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _normalise(text: str, spec: TextSpec) -> str:
    text = text.replace("\x00", " ")
    if spec.nfc:
        text = unicodedata.normalize("NFC", text)
    if spec.lowercase:
        text = text.lower()
    if spec.digits:
        text = re.sub(r"\d", "0", text)
    if spec.collapse_whitespace:
        text = re.sub(r"\s+", " ", text).strip(" ")
    return text


def _bucket(gram: list[int], spec: TextSpec) -> int:
    h = ((gram[0] ^ SEED) * PRIME) & MASK
    for code in gram[1:]:
        h = ((h ^ code) * PRIME) & MASK
    h ^= len(gram)
    h = ((h ^ (h >> 30)) * MIX1) & MASK
    h = ((h ^ (h >> 27)) * MIX2) & MASK
    h ^= h >> 31
    return h % spec.buckets


def _reference(text: str, spec: TextSpec) -> list[list[int]]:
    """Each n-gram order's bucket ids, in position order."""
    normalised = _normalise(text, spec)[: spec.max_chars]
    codes = [ord(c) for c in normalised]
    if spec.word_boundaries:
        codes = [32, *codes, 32]
    return [
        [_bucket(codes[i : i + n], spec) for i in range(len(codes) - n + 1)]
        for n in range(spec.ngram_min, spec.ngram_max + 1)
    ]


def _check(texts: list[str], spec: TextSpec) -> None:
    encoded = encode_texts(texts, spec).ids
    width = encoded.shape[1] // spec.orders
    for text, row in zip(texts, encoded, strict=True):
        for order, expected in zip(
            row.reshape(spec.orders, width), _reference(text, spec), strict=True
        ):
            assert order[: len(expected)].tolist() == expected, text
            assert (order[len(expected) :] == spec.pad_id).all(), text


HOSTILE = [
    "Hej  med\tdig\n\n",
    "\u00a0\u2003nbsp og em\u3000space\x1c\x1d\x1e\x1f\x85 slut ",
    "tal 42, ٤٢ og ४२ og ²",
    "e\u0301 (NFD) og É",
    "med\x00nul",
    "\ud800 alene",
    " ",
    "x" * 700,
    "İstanbul ẞ ǅ",
]


@pytest.mark.parametrize(
    "spec",
    [
        TextSpec(),
        TextSpec(buckets=1000, ngram_min=2, ngram_max=4),  # not a power of two
        TextSpec(collapse_whitespace=False, digits=False, word_boundaries=False, max_chars=40),
    ],
)
def test_encoding_equals_the_plain_reference_batched_and_alone(spec: TextSpec) -> None:
    from tests.text_fixtures import SENTENCES

    texts = [s for sentences in SENTENCES.values() for s in sentences] + HOSTILE
    _check(texts, spec)
    for text in texts:
        _check([text], spec)


def test_regex_whitespace_is_str_isspace_for_every_codepoint() -> None:
    """What lets normalisation collapse whitespace with str.split()."""
    space = re.compile(r"\s")
    differ = [c for c in range(0x110000) if bool(space.match(chr(c))) != chr(c).isspace()]
    assert differ == []


def test_encoding_equals_the_reference_on_real_ud_dev_text(ud_dir: Path) -> None:
    from modelyard.data.conllu import read_conllu_sentences

    texts = [s for f in sorted(ud_dir.glob("*dev*.conllu")) for s in read_conllu_sentences(f)]
    assert len(texts) > 1000
    sample = texts[:: max(len(texts) // 600, 1)]
    spec = TextSpec()
    order = np.argsort([len(t) for t in sample], kind="stable")
    for start in range(0, len(sample), 256):
        _check([sample[i] for i in order[start : start + 256]], spec)
    for text in sample[:200]:  # one text (a served request) takes its own path
        _check([text], spec)
