"""Random erasing (train.augment_erasing): one rectangle per chosen image."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from modelyard.config.schema import TrainConfig
from modelyard.train import module as module_mod
from modelyard.train.augment import ERASE_AREA, random_erasing
from modelyard.train.module import Classifier

FILL = -0.5


def _images(n: int = 64, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    # Values in [1, 2): never equal to the fill, so the erased pixels are exactly known.
    return torch.rand(n, 1, 28, 28, dtype=dtype) + 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keeps_shape_dtype_and_only_writes_the_fill(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    images = _images(dtype=dtype)
    out = random_erasing(images, p=1.0, fill=FILL)
    assert out.shape == images.shape and out.dtype == dtype
    kept = out == images
    assert torch.all(kept | (out == FILL))


def test_every_chosen_image_loses_one_rectangle_of_the_stated_area() -> None:
    torch.manual_seed(1)
    out = random_erasing(_images(), p=1.0, fill=FILL)
    for erased in (out[:, 0] == FILL).unbind():
        rows = erased.any(dim=1).nonzero().flatten()
        cols = erased.any(dim=0).nonzero().flatten()
        box = erased[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all()  # one solid rectangle: its bounding box is all erased
        assert int(erased.sum()) == box.numel()
        share = box.numel() / 28**2
        # Rounding of the sides and clipping to the image bend the area a little.
        assert ERASE_AREA[0] * 0.5 <= share <= ERASE_AREA[1] * 1.5


def test_p_sets_the_share_of_images_erased() -> None:
    images = _images(400)
    torch.manual_seed(2)
    assert torch.equal(random_erasing(images, p=0.0, fill=FILL), images)
    torch.manual_seed(2)
    changed = (random_erasing(images, p=0.5, fill=FILL) != images).flatten(1).any(dim=1)
    assert 0.4 < changed.float().mean() < 0.6


def test_seeded_is_deterministic() -> None:
    images = _images(16)
    torch.manual_seed(3)
    a = random_erasing(images, p=0.7, fill=FILL)
    torch.manual_seed(3)
    assert torch.equal(a, random_erasing(images, p=0.7, fill=FILL))


def _spy_on_erasing(monkeypatch: pytest.MonkeyPatch, cfg: TrainConfig) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def spy(images: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        calls.append(kwargs)
        return images

    monkeypatch.setattr(module_mod, "random_erasing", spy)
    module = Classifier(torch.nn.Flatten(), cfg, augment_fill=-0.4)
    batch = (torch.rand(4, 1, 2, 5), torch.tensor([0, 1, 2, 3]))
    module.training_step(batch, 0)
    module.validation_step(batch, 0)  # validation is never augmented
    return calls


def test_the_training_step_erases_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _spy_on_erasing(monkeypatch, TrainConfig()) == []
    assert _spy_on_erasing(monkeypatch, TrainConfig(augment_erasing=0.3)) == [
        {"p": 0.3, "fill": -0.4}
    ]
    assert _spy_on_erasing(monkeypatch, TrainConfig(augment=False, augment_erasing=0.3)) == []
