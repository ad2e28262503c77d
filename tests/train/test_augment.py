from __future__ import annotations

import torch

from modelyard.train.augment import random_affine


def test_keeps_shape_and_moves_pixels_a_little() -> None:
    torch.manual_seed(0)
    images = torch.zeros(16, 1, 28, 28)
    images[:, :, 10:18, 10:18] = 1.0
    out = random_affine(images)
    assert out.shape == images.shape
    assert not torch.equal(out, images)
    # Small transforms: most of the ink stays ink; the mass is roughly preserved.
    assert torch.allclose(out.sum((1, 2, 3)), images.sum((1, 2, 3)), rtol=0.35)


def test_fill_value_for_pixels_moved_in() -> None:
    torch.manual_seed(1)
    out = random_affine(torch.full((4, 1, 8, 8), -2.0), max_degrees=45, fill=-2.0)
    assert torch.allclose(out, torch.full_like(out, -2.0), atol=1e-5)


def test_seeded_is_deterministic() -> None:
    images = torch.rand(4, 1, 12, 12)
    torch.manual_seed(5)
    a = random_affine(images)
    torch.manual_seed(5)
    assert torch.equal(a, random_affine(images))
