"""Batch augmentation on tensors: random rotations, scalings, shifts, elastic
distortion and erasing.

Done on the whole batch (one ``affine_grid``/``grid_sample``, with the elastic field
added to the same sampling grid; erasing is one masked ``where``), so it costs little
and runs wherever the batch is (CPU or GPU), with no torchvision dependency. An
option that is off draws no random numbers, so turning one on leaves the others'
draws, and a recipe without it, exactly as they were.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ERASE_AREA = (0.02, 0.2)
"""Share of the image one erased rectangle covers, drawn uniformly from this range."""
ERASE_RATIO = (0.3, 3.3)
"""Height / width of an erased rectangle, drawn log-uniformly (torchvision's range)."""


def random_affine(
    images: torch.Tensor,
    *,
    max_degrees: float,
    scale: tuple[float, float],
    max_shift: float,
    fill: float = 0.0,
    elastic_alpha: float = 0.0,
    elastic_sigma: float = 4.0,
) -> torch.Tensor:
    """Apply an independent random affine transform to each (N, C, H, W) image.

    The angle is drawn from [-max_degrees, max_degrees], the zoom from ``scale``
    (low, high) and each axis's shift from [-max_shift, max_shift], a fraction of the
    image size; ``fill`` is the value (in the normalised input space) given to pixels
    moved in from outside the image. ``elastic_alpha`` > 0 adds an elastic distortion
    (:func:`elastic_offsets`) to the same sampling grid, so it costs no second
    resampling. The strengths' defaults and ranges are ``train.augment_*``
    (:class:`modelyard.config.schema.TrainConfig`).
    """
    n, _, height, width = images.shape
    device, dtype = images.device, images.dtype
    angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(max_degrees)
    factor = torch.empty(n, device=device).uniform_(*scale)
    shift = (torch.rand(n, 2, device=device) * 2 - 1) * max_shift * 2  # grid spans [-1, 1]
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    ).to(dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    if elastic_alpha > 0:
        grid = grid + elastic_offsets(
            n, height, width, alpha=elastic_alpha, sigma=elastic_sigma, device=device
        ).to(dtype)
    # grid_sample pads with zeros; shift so that padding equals ``fill``.
    out = F.grid_sample(images - fill, grid, align_corners=False, padding_mode="zeros")
    return out + fill


def _smoothing_matrix(
    size: int, sigma: float, radius: int, device: torch.device | None
) -> torch.Tensor:
    """(size, size) matrix M with (M @ v) = v convolved with a Gaussian of ``sigma``
    truncated at ``radius`` and summing to 1, zero-padded at the edges."""
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    total = torch.exp(-0.5 * (taps / sigma) ** 2).sum()
    pos = torch.arange(size, dtype=torch.float32, device=device)
    gap = pos[:, None] - pos[None, :]
    weights = torch.exp(-0.5 * (gap / sigma) ** 2) * (gap.abs() <= radius)
    return weights / total


def elastic_offsets(
    n: int,
    height: int,
    width: int,
    *,
    alpha: float,
    sigma: float,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Random smooth displacement fields (Simard et al., 2003), as (N, H, W, 2) offsets
    in ``grid_sample`` units (x, y).

    Each pixel's displacement along each axis is drawn from [-1, 1], smoothed by a
    Gaussian of standard deviation ``sigma`` pixels (truncated at 3 sigma, summing to
    1, zero padding) and scaled by ``alpha`` pixels, so ``alpha=34, sigma=4`` means
    what it did in the paper. The smoothing is a matrix product on each side (H x H
    and W x W), which on CPU costs far less than a convolution with a long 1-D
    kernel; its radius is capped at the image size, so any ``sigma`` stays cheap.
    """
    radius = max(1, min(math.ceil(3 * sigma), max(height, width)))
    rows = _smoothing_matrix(height, sigma, radius, device)
    cols = _smoothing_matrix(width, sigma, radius, device)
    noise = torch.rand(n, 2, height, width, device=device) * 2 - 1
    field = rows @ noise @ cols.T * alpha  # (N, 2, H, W), pixels
    # Pixels to grid units: the grid spans 2 over the width (x) and the height (y).
    units = torch.tensor([2.0 / width, 2.0 / height], device=field.device).view(1, 2, 1, 1)
    return (field * units).permute(0, 2, 3, 1)


def random_erasing(
    images: torch.Tensor,
    *,
    p: float,
    fill: float = 0.0,
    area: tuple[float, float] = ERASE_AREA,
    ratio: tuple[float, float] = ERASE_RATIO,
) -> torch.Tensor:
    """Set one random rectangle of each (N, C, H, W) image to ``fill``, with probability
    ``p`` per image (cutout / random erasing, Zhong et al., 2017).

    The rectangle covers a share of the image drawn from ``area``, with height / width
    drawn log-uniformly from ``ratio``, clipped to the image, at a uniform position.
    All draws are made for every image whatever ``p``, so a seed fixes the result.
    """
    n, _, height, width = images.shape
    device = images.device
    chosen = torch.rand(n, device=device) < p
    target = torch.empty(n, device=device).uniform_(*area) * (height * width)
    aspect = torch.exp(
        torch.empty(n, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    )
    box_h = torch.sqrt(target * aspect).round().clamp(1, height)
    box_w = torch.sqrt(target / aspect).round().clamp(1, width)
    top = (torch.rand(n, device=device) * (height - box_h + 1)).floor()
    left = (torch.rand(n, device=device) * (width - box_w + 1)).floor()
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])  # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])  # (N, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & chosen[:, None, None]
    return torch.where(mask[:, None], torch.full_like(images, fill), images)
