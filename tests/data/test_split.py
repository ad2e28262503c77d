from __future__ import annotations

import numpy as np
import pytest

from modelyard.data.dataset import SourceData
from modelyard.data.split import make_splits
from modelyard.errors import DataError


def _source(n_per_class: int = 30, k: int = 3, with_test: bool = False) -> SourceData:
    labels = np.repeat(np.arange(k), n_per_class)
    images = np.arange(len(labels) * 4, dtype=np.int64).reshape(-1, 2, 2, 1).astype(np.uint8)
    images[:, 0, 0, 0] = np.arange(len(labels))  # make each image unique
    extra = {}
    if with_test:
        extra = {"test_images": images[:k], "test_labels": np.arange(k)}
    return SourceData("toy", "mem://toy", images, labels, tuple("abc"[:k]), **extra)


def _ids(split) -> set[int]:  # type: ignore[no-untyped-def]
    return set(split.images[:, 0, 0, 0].tolist())


def test_splits_are_disjoint_stratified_and_deterministic() -> None:
    a = make_splits(_source(), 0.2, 0.2, seed=3)
    b = make_splits(_source(), 0.2, 0.2, seed=3)
    c = make_splits(_source(), 0.2, 0.2, seed=4)
    assert (len(a.train), len(a.val), len(a.test)) == (54, 18, 18)
    assert not (_ids(a.train) & _ids(a.val)) and not (_ids(a.train) & _ids(a.test))
    assert not (_ids(a.val) & _ids(a.test))
    for split in (a.train, a.val, a.test):
        counts = np.bincount(split.labels)
        assert counts.max() - counts.min() == 0  # every class equally represented
    assert a.fingerprint == b.fingerprint and _ids(a.test) == _ids(b.test)
    assert a.fingerprint != c.fingerprint


def test_fixed_test_split_is_kept() -> None:
    data = make_splits(_source(with_test=True), 0.2, 0.2, seed=0)
    assert len(data.test) == 3 and len(data.train) + len(data.val) == 90


def test_limit_keeps_every_class() -> None:
    data = make_splits(_source(), 0.2, 0.2, seed=0, limit=9)
    assert len(data.train) == 9 and set(data.train.labels.tolist()) == {0, 1, 2}


def test_a_class_with_one_example_is_a_clear_error() -> None:
    source = _source()
    labels = source.labels.copy()
    labels[0] = 3
    bad = SourceData("toy", "mem://toy", source.images, labels, tuple("abcd"))
    with pytest.raises(DataError, match="a class has a single example"):
        make_splits(bad, 0.2, 0.2, seed=0)
