"""The text dataset contract: texts, labels, class names, a fingerprint, seeded splits.

The text counterpart of :mod:`modelyard.data.dataset`. Every text source (CoNLL-U
files, a user's CSV/JSONL/Parquet table) yields a :class:`TextSource`; splitting it
gives a :data:`TextDataset` (a :class:`~modelyard.data.dataset.LabelledDataset` of
:class:`TextSplit`).
Texts stay raw here: normalisation belongs to :mod:`modelyard.features.text`, which
training and serving share.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeAlias

import numpy as np

from modelyard.data.dataset import LabelledDataset
from modelyard.data.split import stratified_indices
from modelyard.errors import ConfigError, DataError


@dataclass(frozen=True)
class TextSplit:
    """One split: ``texts`` (N,) object array of str, ``labels`` int64 (N,) and
    ``groups`` (N,) object array naming where each text came from (file name, or the
    table's file), so results can be broken down by source or genre.

    ``weight``: (N,) float32, each text's loss weight as its source set it: 1 for a
    text of the labelled source; for a text another source added (word lists,
    catalogues, manual pages: :func:`with_extra_training`) its source's
    ``data.extra_text_weights`` entry, or NaN where it has none and so takes
    ``data.extra_text_weight`` (a training setting, applied by :meth:`loss_weights`).
    None: every text is the labelled source's."""

    texts: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def examples(self) -> np.ndarray:
        """The raw examples, whatever the kind (every split type has them)."""
        return self.texts

    def take(self, index: np.ndarray) -> TextSplit:
        """The examples at ``index`` (integer indices or a boolean mask)."""
        weight = None if self.weight is None else self.weight[index]
        return TextSplit(self.texts[index], self.labels[index], self.groups[index], weight)

    @property
    def source_weights(self) -> np.ndarray:
        """``weight`` as a float32 array, all 1 when it is None."""
        if self.weight is None:
            return np.ones(len(self), dtype=np.float32)
        return self.weight

    @property
    def extra_mask(self) -> np.ndarray:
        """True for an added text. One whose source weighs it 1 counts as real: training
        treats the two alike."""
        mask: np.ndarray = self.source_weights != 1.0  # NaN too
        return mask

    def loss_weights(self, extra_weight: float) -> np.ndarray:
        """Each text's loss weight: 1 for a real text, its source's weight for an extra
        text whose source has one, else ``extra_weight``."""
        weights = self.source_weights
        return np.where(np.isnan(weights), extra_weight, weights).astype(np.float32)


def concatenate_splits(parts: Sequence[TextSplit]) -> TextSplit:
    """``parts`` one after another, weights included (None only if none had any)."""
    return TextSplit(
        np.concatenate([p.texts for p in parts]),
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.groups for p in parts]),
        None
        if all(p.weight is None for p in parts)
        else np.concatenate([p.source_weights for p in parts]),
    )


@dataclass(frozen=True)
class TextSource:
    """What a text source loads: every example, with its label and origin."""

    name: str
    uri: str
    """Where the data came from (URL, folder or file), for tracking."""
    texts: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    groups: np.ndarray
    documents: np.ndarray | None = None
    """The document each text belongs to (CoNLL-U: file and document id), for splits
    that keep a document's sentences together; None: every text is its own document."""

    def __post_init__(self) -> None:
        check_texts(self.texts, self.labels, self.class_names, self.name)
        if self.groups.shape != self.labels.shape:
            raise DataError(f"{self.name}: {len(self.groups)} groups for {len(self.labels)} texts")
        if self.documents is not None and self.documents.shape != self.labels.shape:
            raise DataError(
                f"{self.name}: {len(self.documents)} document ids for {len(self.labels)} texts"
            )

    @property
    def all(self) -> TextSplit:
        return TextSplit(self.texts, self.labels, self.groups)


TextDataset: TypeAlias = LabelledDataset[TextSplit]
"""Train/val/test splits of one text source."""


def as_text_array(texts: list[str] | tuple[str, ...] | np.ndarray) -> np.ndarray:
    """A 1-d object array of Python str (numpy's fixed-width ``<U`` would pad every
    text to the longest one)."""
    array = np.empty(len(texts), dtype=object)
    array[:] = list(texts)
    return array


def check_texts(
    texts: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], name: str
) -> None:
    """Reject data that breaks the contract, naming the source and the problem."""
    if texts.ndim != 1 or texts.dtype != object:
        raise DataError(f"{name}: texts must be a 1-d object array of str")
    if labels.ndim != 1 or labels.shape[0] != texts.shape[0]:
        raise DataError(f"{name}: {texts.shape[0]} texts but labels of shape {labels.shape}")
    if texts.shape[0] == 0:
        raise DataError(f"{name}: the source holds no texts")
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise DataError(f"{name}: labels outside 0..{len(class_names) - 1}")
    if len(set(class_names)) != len(class_names):
        raise DataError(f"{name}: class names repeat: {list(class_names)}")


def text_fingerprint(splits: dict[str, TextSplit], class_names: tuple[str, ...]) -> str:
    """Content hash of the texts and labels as trained on, wherever they came from."""
    digest = hashlib.sha256()
    digest.update("\n".join(class_names).encode())
    for split_name in sorted(splits):
        split = splits[split_name]
        digest.update(f"{split_name}:{len(split)}".encode())
        for text in split.texts:
            encoded = text.encode("utf-8")
            # Length-prefixed, so no choice of texts can collide by concatenation.
            digest.update(len(encoded).to_bytes(8, "little") + encoded)
        digest.update(np.ascontiguousarray(split.labels.astype(np.int64)).tobytes())
    return digest.hexdigest()


def first_occurrences(texts: np.ndarray) -> np.ndarray:
    """Sorted indices of the first occurrence of every distinct text."""
    seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        seen.setdefault(text, i)
    return np.fromiter(sorted(seen.values()), dtype=np.int64, count=len(seen))


def _limit(split: TextSplit, limit: int | None, seed: int) -> TextSplit:
    """At most ``limit`` examples, stratified, so tiny runs still see every class."""
    if limit is None or len(split) <= limit:
        return split
    limit = max(limit, len(np.unique(split.labels)))
    keep, _ = stratified_indices(split.labels, 1 - limit / len(split), seed, "limited")
    return split.take(np.sort(keep))


SPLIT_BY = ("sentence", "document")
"""What ``data.split_by`` may name: the unit a train/val/test split never divides."""


def make_text_splits(
    source: TextSource,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    limit: int | None = None,
    split_by: str = "sentence",
) -> TextDataset:
    """Seeded, stratified train/val/test split of a text source (same rule as images).

    A text that occurs more than once is kept once (its first occurrence): short
    sentences repeat ("ja ."), and a copy in train would make its twin in test easy.
    ``split_by="document"`` keeps every document whole in one split
    (:func:`~modelyard.data.group_split.grouped_indices`): sentences of one document
    share names and topic, so scattering them over train and test flatters the score.
    """
    if split_by not in SPLIT_BY:
        raise DataError(f"data.split_by '{split_by}' is unknown; choose sentence or document")
    keep = first_occurrences(source.texts)
    everything = source.all.take(keep)
    labels = everything.labels.astype(np.int64)
    if split_by == "document":
        from modelyard.data.group_split import grouped_indices

        documents = source.documents[keep] if source.documents is not None else np.arange(len(keep))
        train_index, val_index, test_index = grouped_indices(
            labels, documents, val_fraction, test_fraction, seed
        )
        pool = everything
    else:
        pool_index, test_index = stratified_indices(labels, test_fraction, seed, "test")
        pool = everything.take(pool_index)
        train_index, val_index = stratified_indices(
            pool.labels, val_fraction / (1.0 - test_fraction), seed + 1, "validation"
        )
    splits = {
        "train": _limit(pool.take(train_index), limit, seed),
        "val": _limit(pool.take(val_index), limit, seed),
        "test": _limit(everything.take(test_index), limit, seed),
    }
    return TextDataset(
        name=source.name,
        uri=source.uri,
        class_names=source.class_names,
        fingerprint=text_fingerprint(splits, source.class_names),
        **splits,
    )


def with_extra_training(
    dataset: TextDataset, extra: TextSplit, weight: float | None = None
) -> TextDataset:
    """``dataset`` with ``extra`` appended to its training split only (fingerprint
    recomputed) and marked as extra (:attr:`TextSplit.weight`); an extra text that is
    already in any split is left out. ``weight``: the loss weight of this source's
    texts (``data.extra_text_weights``); None: ``data.extra_text_weight``'s."""
    seen = {str(t) for split in (dataset.train, dataset.val, dataset.test) for t in split.texts}
    keep = np.fromiter((str(t) not in seen for t in extra.texts), bool, len(extra))
    extra = extra.take(keep)
    extra = extra.take(first_occurrences(extra.texts))
    marked = np.full(len(extra), np.nan if weight is None else weight, dtype=np.float32)
    train = concatenate_splits([dataset.train, replace(extra, weight=marked)])
    splits = {"train": train, "val": dataset.val, "test": dataset.test}
    return replace(dataset, train=train, fingerprint=text_fingerprint(splits, dataset.class_names))


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Balanced class weights ``n / (k * count)`` (scikit-learn's "balanced"), float32.

    A class absent from ``labels`` gets weight 0 rather than a division by zero.
    """
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def training_class_weights(
    labels: np.ndarray,
    class_names: tuple[str, ...],
    balance: bool,
    label_weights: Mapping[str, float],
) -> np.ndarray | None:
    """The per-class weights of the training loss, float32: balanced by count
    (:func:`class_weights`, ``train.class_balance=weights``) or 1, times each label's
    ``data.label_weights`` entry; None: every class weighs 1 (an unweighted loss)."""
    unknown = sorted(set(label_weights) - set(class_names))
    if unknown:
        raise ConfigError(
            f"data.label_weights.{unknown[0]}: no such label; use one of {', '.join(class_names)}"
        )
    if not balance and not label_weights:
        return None
    weights = (
        class_weights(labels, len(class_names))
        if balance
        else np.ones(len(class_names), np.float32)
    )
    factors = np.array([label_weights.get(name, 1.0) for name in class_names], dtype=np.float32)
    return weights * factors
