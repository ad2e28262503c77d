"""The dataset contract every source fulfils: examples, labels, class names, fingerprint.

One :class:`LabelledDataset` type holds the train/val/test splits of every input kind;
only the split type differs (:class:`ArraySplit` images here, ``TextSplit`` texts in
:mod:`modelyard.data.text`, ``TabularSplit`` rows in the tabular modality).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar, cast

import numpy as np

from modelyard.errors import DataError

SPLITS = ("train", "val", "test")
"""The names :meth:`LabelledDataset.split` takes."""

SplitT = TypeVar("SplitT")


@dataclass(frozen=True)
class ArraySplit:
    """One split: ``images`` uint8 (N, H, W, C) and ``labels`` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def examples(self) -> np.ndarray:
        """The raw examples, whatever the kind (every split type has them)."""
        return self.images


@dataclass(frozen=True)
class SourceData:
    """What a source loads: all examples, plus its own test split when it has one."""

    name: str
    uri: str
    """Where the data came from (URL, folder or package), for tracking."""
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_arrays(self.images, self.labels, self.class_names, self.name)
        if self.test_images is not None:
            assert self.test_labels is not None
            check_arrays(self.test_images, self.test_labels, self.class_names, self.name)


@dataclass(frozen=True)
class LabelledDataset(Generic[SplitT]):
    """Train/val/test splits of one source, ready for training and evaluation; the
    same type for every input kind, whose own split type is ``SplitT``."""

    name: str
    uri: str
    """Where the data came from (URL, folder, file or package), for tracking."""
    class_names: tuple[str, ...]
    train: SplitT
    val: SplitT
    test: SplitT
    fingerprint: str
    """sha256 over every split's examples and labels and the class names: changes iff
    the data does."""

    def split(self, name: str) -> SplitT:
        if name not in SPLITS:
            raise DataError(f"unknown split '{name}'; choose train, val or test")
        return cast("SplitT", getattr(self, name))


Dataset: TypeAlias = LabelledDataset[ArraySplit]
"""An image dataset (the name predates the other kinds)."""


def check_arrays(
    images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], name: str
) -> None:
    """Reject arrays that break the contract, naming the source and the problem."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(
            f"{name}: images must be uint8 of shape (N, H, W, C), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{name}: {images.shape[0]} images but labels of shape {labels.shape}")
    if images.shape[0] == 0:
        raise DataError(f"{name}: the source holds no examples")
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise DataError(f"{name}: labels outside 0..{len(class_names) - 1}")


def fingerprint(splits: dict[str, ArraySplit], class_names: tuple[str, ...]) -> str:
    """Content hash of the data as trained on, independent of where it came from."""
    digest = hashlib.sha256()
    digest.update("\n".join(class_names).encode())
    for split_name in sorted(splits):
        split = splits[split_name]
        for array in (split.images, split.labels.astype(np.int64)):
            digest.update(f"{split_name}:{array.dtype}:{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
