"""The LightningDataModule: in-memory tensors built with the shared preprocessing."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from modelyard.data.dataset import ArraySplit, Dataset
from modelyard.features.image import ImageSpec, to_model_input


def split_tensors(split: ArraySplit, spec: ImageSpec) -> TensorDataset:
    """Preprocess one split once, with the same function the server uses."""
    x = torch.from_numpy(to_model_input(split.images, spec))
    y = torch.from_numpy(split.labels.astype("int64"))
    return TensorDataset(x, y)


class SplitDataModule(L.LightningDataModule):
    """The train, val and test loaders of a dataset's three splits: a kind's data
    module says how one split is loaded (``_loader``); train is shuffled."""

    def _loader(self, name: str, shuffle: bool) -> DataLoader[Any]:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader("test", shuffle=False)


class ImageDataModule(SplitDataModule):
    def __init__(self, dataset: Dataset, spec: ImageSpec, batch_size: int, num_workers: int):
        super().__init__()
        self.dataset = dataset
        self.spec = spec
        self.batch_size = batch_size
        self.num_workers = num_workers
        self._splits: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        for name in ("train", "val", "test"):
            if name not in self._splits:
                self._splits[name] = split_tensors(self.dataset.split(name), self.spec)

    def _loader(self, name: str, shuffle: bool) -> DataLoader[Any]:
        return DataLoader(
            self._splits[name],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
