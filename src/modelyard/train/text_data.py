"""Text batches for Lightning: each batch is encoded when it is drawn, with the same
:func:`~modelyard.features.text.encode_texts` the server uses.

Encoding per batch pads each batch only to its own longest text; encoding a whole
split at once would pad ten thousand sentences to the longest one in the corpus.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, get_worker_info

from modelyard.config.schema import Config
from modelyard.data.text import TextDataset, TextSplit
from modelyard.features.text import TextSpec, encode_texts, strip_punctuation
from modelyard.modality import modality_for
from modelyard.train.datamodule import SplitDataModule


def text_spec(cfg: Config) -> TextSpec:
    """The preprocessing spec a text config implies (stored in the bundle)."""
    spec: TextSpec = modality_for("text").input_spec(cfg)
    return spec


class _Collate:
    """Indices -> (ids, labels) for one batch; a class so worker processes can pickle it.

    With ``punctuation_dropout`` > 0 (training batches only) that share of the batch's
    texts, drawn at random per batch, lose their punctuation before encoding. With
    ``weights`` (one per text of the split) a batch is (ids, labels, weights), and
    :class:`~modelyard.train.module.Classifier` weighs each text's loss by its weight.
    """

    def __init__(
        self,
        split: TextSplit,
        spec: TextSpec,
        punctuation_dropout: float = 0.0,
        seed: int = 0,
        weights: np.ndarray | None = None,
    ):
        self.split = split
        self.spec = spec
        self.punctuation_dropout = punctuation_dropout
        self.seed = seed
        self.weights = weights
        self._rng: np.random.Generator | None = None

    def _generator(self) -> np.random.Generator:
        if self._rng is None:  # created in the process that draws: each worker its own
            worker = get_worker_info()
            self._rng = np.random.default_rng((self.seed, worker.id + 1 if worker else 0))
        return self._rng

    def __call__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = np.asarray(indices)
        texts = [str(t) for t in self.split.texts[index]]
        if self.punctuation_dropout > 0:
            chosen = np.flatnonzero(self._generator().random(len(texts)) < self.punctuation_dropout)
            for i, stripped in zip(
                chosen, strip_punctuation([texts[i] for i in chosen]), strict=True
            ):
                texts[i] = stripped
        ids = encode_texts(texts, self.spec).ids
        labels = torch.from_numpy(self.split.labels[index].astype(np.int64))
        if self.weights is None:
            return torch.from_numpy(ids), labels
        return torch.from_numpy(ids), labels, torch.from_numpy(self.weights[index])


class LengthBucketBatches(Sampler[list[int]]):
    """Random batches of similar-length texts: shuffle, sort each window of
    ``window`` batches by length, cut it into batches, shuffle the batches.

    A batch is padded to its longest text, so mixing a 10-word and a 100-word
    sentence wastes most of the work; batches still change every epoch.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, window: int = 50):
        self.lengths = lengths
        self.batch_size = batch_size
        self.window = window * batch_size
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.window):
            window = order[start : start + self.window]
            window = window[np.argsort(self.lengths[window], kind="stable")]
            batches += [
                window[i : i + self.batch_size].tolist()
                for i in range(0, len(window), self.batch_size)
            ]
        for index in rng.permutation(len(batches)):
            yield batches[index]


class TextDataModule(SplitDataModule):
    def __init__(
        self,
        dataset: TextDataset,
        spec: TextSpec,
        batch_size: int,
        num_workers: int,
        seed: int = 0,
        punctuation_dropout: float = 0.0,
        extra_weight: float = 1.0,
    ):
        super().__init__()
        self.dataset = dataset
        self.spec = spec
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.punctuation_dropout = punctuation_dropout
        self.extra_weight = extra_weight
        """Loss weight of training texts not from the labelled source
        (``data.extra_text_weight``); 1.0 gives plain (ids, labels) batches."""

    def _loader(self, name: str, shuffle: bool) -> DataLoader[Any]:
        split = self.dataset.split(name)
        lengths = np.fromiter(map(len, split.texts), np.int64, len(split))
        if shuffle:
            batches: Sampler[list[int]] = LengthBucketBatches(lengths, self.batch_size, self.seed)
        else:  # evaluation: sorted by length, the least padding
            order = np.argsort(lengths, kind="stable")
            batches = [  # type: ignore[assignment]  # a list of index lists serves as a batch sampler
                order[i : i + self.batch_size].tolist()
                for i in range(0, len(order), self.batch_size)
            ]
        weights = split.loss_weights(self.extra_weight) if shuffle else None
        if weights is not None and (weights == 1.0).all():
            weights = None  # all weigh 1: plain (ids, labels) batches, the same loss
        return DataLoader(
            range(len(split)),  # type: ignore[arg-type]  # a range is a map-style dataset of its indices
            batch_sampler=batches,
            collate_fn=_Collate(
                split, self.spec, self.punctuation_dropout if shuffle else 0.0, self.seed, weights
            ),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
