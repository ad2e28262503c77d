from __future__ import annotations

from typing import Any

import pytest
import torch

from modelyard.config.schema import TrainConfig
from modelyard.train import module as module_mod
from modelyard.train.augment import random_affine
from modelyard.train.module import Classifier


def _today(images: torch.Tensor) -> torch.Tensor:
    """The strengths train.augment_* default to (and the values fixed before they existed)."""
    return random_affine(images, max_degrees=10.0, scale=(0.9, 1.1), max_shift=0.1)


def test_keeps_shape_and_moves_pixels_a_little() -> None:
    torch.manual_seed(0)
    images = torch.zeros(16, 1, 28, 28)
    images[:, :, 10:18, 10:18] = 1.0
    out = _today(images)
    assert out.shape == images.shape
    assert not torch.equal(out, images)
    # Small transforms: most of the ink stays ink; the mass is roughly preserved.
    assert torch.allclose(out.sum((1, 2, 3)), images.sum((1, 2, 3)), rtol=0.35)


def test_fill_value_for_pixels_moved_in() -> None:
    torch.manual_seed(1)
    out = random_affine(
        torch.full((4, 1, 8, 8), -2.0), max_degrees=45, scale=(0.9, 1.1), max_shift=0.1, fill=-2.0
    )
    assert torch.allclose(out, torch.full_like(out, -2.0), atol=1e-5)


def test_seeded_is_deterministic() -> None:
    images = torch.rand(4, 1, 12, 12)
    torch.manual_seed(5)
    a = _today(images)
    torch.manual_seed(5)
    assert torch.equal(a, _today(images))


def test_zero_strengths_leave_the_images_as_they_are() -> None:
    images = torch.rand(8, 1, 28, 28)
    out = random_affine(images, max_degrees=0.0, scale=(1.0, 1.0), max_shift=0.0)
    torch.testing.assert_close(out, images, atol=1e-5, rtol=0)


def _tilt_rows(max_degrees: float) -> torch.Tensor:
    """Rows (from the middle) that a centred horizontal line reaches, per rotated copy."""
    torch.manual_seed(3)
    line = torch.zeros(64, 1, 29, 29)
    line[:, :, 14, :] = 1.0
    out = random_affine(line, max_degrees=max_degrees, scale=(1.0, 1.0), max_shift=0.0)
    rows = (out[:, 0] > 0.1).any(dim=2).float()  # (N, H): rows holding ink
    offsets = (torch.arange(29) - 14).abs().float()
    return (rows * offsets).amax(dim=1)


def test_the_rotation_stays_within_max_degrees() -> None:
    # A 29-pixel line turned by at most 5 degrees reaches at most 14 * tan(5 deg) ~ 1.2
    # rows from the middle (2 with interpolation); by up to 60 degrees, most go far.
    assert _tilt_rows(5.0).max() <= 2
    assert (_tilt_rows(60.0) > 4).float().mean() > 0.5


def test_the_shift_stays_within_max_shift() -> None:
    torch.manual_seed(4)
    dot = torch.zeros(64, 1, 20, 20)
    dot[:, :, 10, 10] = 1.0
    out = random_affine(dot, max_degrees=0.0, scale=(1.0, 1.0), max_shift=0.1)
    cols = (out[:, 0] > 0.05).any(dim=1).float()  # (N, W)
    reach = (cols * (torch.arange(20) - 10).abs().float()).amax(dim=1)
    # 0.1 of 20 pixels: at most 2 (3 with interpolation), and some copies do move.
    assert reach.max() <= 3 and (reach >= 1).any()


def test_the_training_step_uses_the_configured_strengths(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def spy(images: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        seen.update(kwargs)
        return images

    monkeypatch.setattr(module_mod, "random_affine", spy)
    cfg = TrainConfig(augment_degrees=15.0, augment_scale=0.2, augment_shift=0.05)
    module = Classifier(torch.nn.Flatten(), cfg, augment_fill=-0.4)
    batch = (torch.rand(4, 1, 2, 5), torch.tensor([0, 1, 2, 3]))
    module.training_step(batch, 0)
    assert seen == {
        "max_degrees": 15.0,
        "scale": (0.8, 1.2),
        "max_shift": 0.05,
        "fill": -0.4,
        "elastic_alpha": 0.0,
        "elastic_sigma": 4.0,
    }
    seen.clear()
    module.validation_step(batch, 0)  # validation is never augmented
    assert seen == {}
