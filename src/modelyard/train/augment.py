"""Batch augmentation on tensors: small random rotations, scalings and shifts.

Done on the whole batch with one ``affine_grid``/``grid_sample`` so it costs little
and runs wherever the batch is (CPU or GPU), with no torchvision dependency.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(
    images: torch.Tensor,
    *,
    max_degrees: float,
    scale: tuple[float, float],
    max_shift: float,
    fill: float = 0.0,
) -> torch.Tensor:
    """Apply an independent random affine transform to each (N, C, H, W) image.

    The angle is drawn from [-max_degrees, max_degrees], the zoom from ``scale``
    (low, high) and each axis's shift from [-max_shift, max_shift], a fraction of the
    image size; ``fill`` is the value (in the normalised input space) given to pixels
    moved in from outside the image. The strengths' defaults and ranges are
    ``train.augment_*`` (:class:`modelyard.config.schema.TrainConfig`).
    """
    n = images.shape[0]
    device, dtype = images.device, images.dtype
    angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(max_degrees)
    factor = torch.empty(n, device=device).uniform_(*scale)
    shift = (torch.rand(n, 2, device=device) * 2 - 1) * max_shift * 2  # grid spans [-1, 1]
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    ).to(dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # grid_sample pads with zeros; shift so that padding equals ``fill``.
    out = F.grid_sample(images - fill, grid, align_corners=False, padding_mode="zeros")
    return out + fill
