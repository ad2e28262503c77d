"""The text dataset contract: task=langid_nordic and table sources, seeded splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.text_fixtures import LABELS, SENTENCES, write_jsonl, write_ud_fixture

from modelyard.config import compose_config
from modelyard.data import load_text_dataset, load_text_source
from modelyard.data.text import TextDataset, class_weights
from modelyard.errors import ConfigError


def _check_contract(data: TextDataset) -> None:
    seen: set[str] = set()
    for split in (data.train, data.val, data.test):
        assert split.texts.dtype == np.dtype(object) and len(split) > 0
        assert all(isinstance(t, str) and t.strip() for t in split.texts)
        assert split.labels.dtype == np.int64 and split.groups.shape == split.labels.shape
        assert set(np.unique(split.labels)) <= set(range(len(data.class_names)))
        texts = set(split.texts)
        assert not texts & seen  # disjoint splits
        seen |= texts
    assert len(data.fingerprint) == 64


def test_langid_nordic_on_fixture_files(tmp_path: Path) -> None:
    folder = write_ud_fixture(tmp_path / "ud", copies=3)
    cfg = compose_config([*_args(folder)])
    assert cfg.task.kind == "text" and cfg.model.name == "fasttext"
    data = load_text_dataset(cfg.data)
    _check_contract(data)
    assert data.class_names == LABELS
    total = len(data.train) + len(data.val) + len(data.test)
    assert total == 3 * sum(len(s) for s in SENTENCES.values())
    # Stratified: every class in every split; seeded: same split and fingerprint again.
    for split in (data.train, data.val, data.test):
        assert set(split.labels) == set(range(5))
    again = load_text_dataset(cfg.data)
    assert again.fingerprint == data.fingerprint
    assert list(again.test.texts) == list(data.test.texts)
    other = load_text_dataset(compose_config([*_args(folder), "data.split_seed=1"]).data)
    assert other.fingerprint != data.fingerprint


def _args(folder: Path) -> list[str]:
    # Without word-list sentences (tests/data/test_wordlists.py), so counts are the files'.
    return ["task=langid_nordic", f"data.path={folder}", "data.word_list_sentences=0"]


def test_table_task(tmp_path: Path) -> None:
    rows = [{"t": s, "y": label} for label, sents in SENTENCES.items() for s in sents]
    path = write_jsonl(tmp_path / "mine.jsonl", rows)
    cfg = compose_config(
        ["task=text_table", f"data.path={path}", "data.text_column=t", "data.label_column=y"]
    )
    data = load_text_dataset(cfg.data)
    _check_contract(data)
    assert data.class_names == tuple(sorted(LABELS))


def test_text_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"data\.source=table needs data\.path"):
        compose_config(["task=text_table"])
    with pytest.raises(ConfigError, match="need a text task"):
        compose_config(["task=digits", "model=fasttext"])
    with pytest.raises(ConfigError, match="needs a text model"):
        compose_config(["task=langid_nordic", "model=cnn"])
    with pytest.raises(ConfigError, match="ngram_min"):
        compose_config(["task=langid_nordic", "text.ngram_min=4", "text.ngram_max=2"])


def test_class_weights_balance_counts() -> None:
    weights = class_weights(np.array([0, 0, 0, 1, 2, 2]), 4)
    assert weights.tolist() == pytest.approx([2 / 3, 2.0, 1.0, 0.0])
    # Weighted counts are equal across the present classes.
    assert (weights[:3] * np.array([3, 1, 2])).tolist() == pytest.approx([2.0, 2.0, 2.0])


def test_langid_nordic_real_ud_files(ud_dir: Path) -> None:
    cfg = compose_config(_args(ud_dir))
    data = load_text_dataset(cfg.data)
    _check_contract(data)
    counts = {
        name: sum(int((s.labels == i).sum()) for s in (data.train, data.val, data.test))
        for i, name in enumerate(data.class_names)
    }
    # The README's files: 564 da, 504 sv, 2409 nb, 6183 nn sentences (a few repeated
    # short ones, like "ja .", are kept once).
    assert 550 <= counts["da"] <= 564 and 490 <= counts["sv"] <= 504
    assert 2350 <= counts["nb"] <= 2409 and 5000 <= counts["nn"] <= 1890 + 3412 + 881
    # Test share is about data.test_fraction of every class; whole documents move, so
    # Swedish (8 documents of about 60 sentences) lands further from it than the rest.
    for i in range(5):
        share = (data.test.labels == i).sum() / list(counts.values())[i]
        assert share == pytest.approx(cfg.data.test_fraction, abs=0.08)
    # No document (file and document id) is in two splits.
    source = load_text_source(cfg.data)
    assert source.documents is not None
    doc_of: dict[str, str] = {}
    for text, doc in zip(source.texts, source.documents, strict=True):
        doc_of.setdefault(text, doc)  # a repeated text is kept at its first occurrence
    docs = [{doc_of[t] for t in s.texts} for s in (data.train, data.val, data.test)]
    assert not (docs[0] & docs[1] or docs[0] & docs[2] or docs[1] & docs[2])
