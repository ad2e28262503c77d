"""Text batches for Lightning: each batch is encoded when it is drawn, with the same
:func:`~modelyard.features.text.encode_texts` the server uses.

Encoding per batch pads each batch only to its own longest text; encoding a whole
split at once would pad ten thousand sentences to the longest one in the corpus.
"""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from modelyard.config.schema import Config
from modelyard.data.text import TextDataset, TextSplit
from modelyard.features.text import TextSpec, encode_texts


def text_spec(cfg: Config) -> TextSpec:
    """The preprocessing spec a text config implies (stored in the bundle)."""
    t = cfg.text
    return TextSpec(
        nfc=t.nfc,
        lowercase=t.lowercase,
        digits=t.digits,
        collapse_whitespace=t.collapse_whitespace,
        word_boundaries=t.word_boundaries,
        ngram_min=t.ngram_min,
        ngram_max=t.ngram_max,
        buckets=t.buckets,
        max_chars=t.max_chars,
    )


class _Collate:
    """Indices -> (ids, labels) for one batch; a class so worker processes can pickle it."""

    def __init__(self, split: TextSplit, spec: TextSpec):
        self.split = split
        self.spec = spec

    def __call__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = np.asarray(indices)
        ids = encode_texts(list(self.split.texts[index]), self.spec).ids
        return torch.from_numpy(ids), torch.from_numpy(self.split.labels[index].astype(np.int64))


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


class TextDataModule(L.LightningDataModule):
    def __init__(
        self,
        dataset: TextDataset,
        spec: TextSpec,
        batch_size: int,
        num_workers: int,
        seed: int = 0,
    ):
        super().__init__()
        self.dataset = dataset
        self.spec = spec
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        split = self.dataset.split(name)
        lengths = np.fromiter(map(len, split.texts), np.int64, len(split))
        if shuffle:
            batches: Sampler[list[int]] = LengthBucketBatches(lengths, self.batch_size, self.seed)
        else:  # evaluation: sorted by length, the least padding
            order = np.argsort(lengths, kind="stable")
            batches = [  # type: ignore[assignment]
                order[i : i + self.batch_size].tolist()
                for i in range(0, len(order), self.batch_size)
            ]
        return DataLoader(
            range(len(split)),  # type: ignore[arg-type]
            batch_sampler=batches,
            collate_fn=_Collate(split, self.spec),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
