"""Document-grouped splits: no document in two splits, every class in every split."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.data.group_split import grouped_indices
from modelyard.data.text import TextSource, as_text_array, make_text_splits
from modelyard.errors import DataError


def _source(docs_per_class: int, sentences_per_doc: int) -> TextSource:
    texts, labels, documents = [], [], []
    for label in range(2):
        for doc in range(docs_per_class):
            for k in range(sentences_per_doc):
                texts.append(f"class {label} document {doc} sentence {k}")
                labels.append(label)
                documents.append(f"c{label}-d{doc}")
    return TextSource(
        name="t",
        uri="mem:",
        texts=as_text_array(texts),
        labels=np.asarray(labels),
        class_names=("a", "b"),
        groups=as_text_array(["f"] * len(texts)),
        documents=as_text_array(documents),
    )


def test_no_document_is_in_two_splits_and_shares_hold() -> None:
    source = _source(docs_per_class=40, sentences_per_doc=5)
    data = make_text_splits(source, 0.1, 0.2, seed=0, split_by="document")
    doc_of = dict(zip(source.texts, source.documents, strict=True))
    docs = [{doc_of[t] for t in split.texts} for split in (data.train, data.val, data.test)]
    assert not (docs[0] & docs[1] or docs[0] & docs[2] or docs[1] & docs[2])
    for split, share in ((data.test, 0.2), (data.val, 0.1)):
        assert set(split.labels) == {0, 1}
        assert len(split) / len(source.texts) == pytest.approx(share, abs=0.03)
    # A sentence split of the same data does divide documents.
    by_sentence = make_text_splits(source, 0.1, 0.2, seed=0)
    test_docs = {doc_of[t] for t in by_sentence.test.texts}
    assert test_docs & {doc_of[t] for t in by_sentence.train.texts}


def test_seeded_and_every_class_needs_three_documents() -> None:
    labels = np.repeat([0, 1], 30)
    groups = np.asarray([f"g{i // 3}" for i in range(60)], dtype=object)
    first = grouped_indices(labels, groups, 0.1, 0.2, seed=3)
    again = grouped_indices(labels, groups, 0.1, 0.2, seed=3)
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    other = grouped_indices(labels, groups, 0.1, 0.2, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    with pytest.raises(DataError, match="class 0 has 1 document"):
        grouped_indices(labels, np.asarray(["x"] * 30 + ["y"] * 15 + ["z"] * 15), 0.1, 0.2, 0)


def test_unknown_split_unit_is_named() -> None:
    with pytest.raises(DataError, match="split_by 'paragraph'"):
        make_text_splits(_source(3, 2), 0.1, 0.2, seed=0, split_by="paragraph")
