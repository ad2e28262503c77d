"""Contract suite: every dataset source yields arrays, labels, class names, fingerprint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.helpers import write_image

from modelyard.config import compose_config
from modelyard.data import load_dataset


def _image_folder(tmp_path: Path) -> list[str]:
    for cls, value in (("cat", 60), ("dog", 200)):
        for i in range(6):
            write_image(tmp_path / "pets" / cls / f"{i}.png", (40 + i, 30), "RGB", value)
            write_image(tmp_path / "pets" / cls / f"{i}.jpg", (20, 25 + i), "L", value)
    return ["task=image_folder", f"data.path={tmp_path / 'pets'}", "data.image_size=16"]


SOURCES = {
    "mnist5k": lambda tmp: ["task=mnist5k"],
    "digits": lambda tmp: ["task=digits"],
    "image_folder": _image_folder,
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_source_contract(name: str, tmp_path: Path) -> None:
    cfg = compose_config(SOURCES[name](tmp_path))
    data = load_dataset(cfg.data)
    size, channels = cfg.data.image_size, cfg.data.channels
    for split in (data.train, data.val, data.test):
        assert split.images.dtype == np.uint8
        assert split.images.shape[1:] == (size, size, channels)
        assert split.labels.dtype == np.int64 and len(split) > 0
        assert set(np.unique(split.labels)) <= set(range(len(data.class_names)))
    assert len(data.fingerprint) == 64
    assert load_dataset(cfg.data).fingerprint == data.fingerprint


def test_mnist5k_is_real_mnist() -> None:
    data = load_dataset(compose_config(["task=mnist5k"]).data)
    assert len(data.train) + len(data.val) + len(data.test) == 5000
    assert data.class_names == tuple("0123456789")
    # Real handwriting: dark background with a few hundred bright strokes per image.
    assert 0.08 < (data.train.images > 128).mean() < 0.25


def test_image_folder_class_names_are_folder_names(tmp_path: Path) -> None:
    data = load_dataset(compose_config(_image_folder(tmp_path)).data)
    assert data.class_names == ("cat", "dog")
    total = len(data.train) + len(data.val) + len(data.test)
    assert total == 24
