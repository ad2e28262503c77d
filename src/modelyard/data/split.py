"""Deterministic, stratified train/val/test splits from a seed."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from modelyard.data.dataset import ArraySplit, Dataset, SourceData, fingerprint
from modelyard.errors import DataError


def stratified_indices(
    labels: np.ndarray, fraction: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out) of a seeded split holding out ``fraction`` per class.

    Works for any kind of example (images, texts): callers index their own arrays.
    """
    counts = np.bincount(labels)
    present = counts[counts > 0]
    if present.min() < 2:
        raise DataError(
            f"cannot hold out a stratified {what} split: a class has a single example; "
            "add more examples to every class"
        )
    n_hold = max(round(fraction * len(labels)), len(present))
    if n_hold >= len(labels):
        raise DataError(f"too few examples ({len(labels)}) to hold out a {what} split")
    keep, hold = train_test_split(
        np.arange(len(labels)), test_size=n_hold, random_state=seed, stratify=labels
    )
    return keep, hold


def _stratified(
    images: np.ndarray, labels: np.ndarray, fraction: float, seed: int, what: str
) -> tuple[ArraySplit, ArraySplit]:
    keep, hold = stratified_indices(labels, fraction, seed, what)
    return ArraySplit(images[keep], labels[keep]), ArraySplit(images[hold], labels[hold])


def _limit(split: ArraySplit, limit: int | None, seed: int) -> ArraySplit:
    """At most ``limit`` examples, stratified, so tiny runs still see every class."""
    if limit is None or len(split) <= limit:
        return split
    n_classes = len(np.unique(split.labels))
    if limit < n_classes:
        limit = n_classes
    keep, _ = _stratified(split.images, split.labels, 1 - limit / len(split), seed, "limited")
    return keep


def make_splits(
    source: SourceData,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    limit: int | None = None,
) -> Dataset:
    """Split a source; a fixed test split (MNIST's 10k) is kept as the test set."""
    images, labels = source.images, source.labels.astype(np.int64)
    if source.test_images is not None and source.test_labels is not None:
        test = ArraySplit(source.test_images, source.test_labels.astype(np.int64))
        pool = ArraySplit(images, labels)
    else:
        pool, test = _stratified(images, labels, test_fraction, seed, "test")
    # Val is carved from what is left, with its own fraction of the whole.
    val_share = val_fraction / (1.0 - (0.0 if source.test_images is not None else test_fraction))
    train, val = _stratified(pool.images, pool.labels, val_share, seed + 1, "validation")
    splits = {
        "train": _limit(train, limit, seed),
        "val": _limit(val, limit, seed),
        "test": _limit(test, limit, seed),
    }
    return Dataset(
        name=source.name,
        uri=source.uri,
        class_names=source.class_names,
        fingerprint=fingerprint(splits, source.class_names),
        **splits,
    )
