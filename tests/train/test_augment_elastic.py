"""Elastic distortion (train.augment_elastic): added to the affine sampling grid."""

from __future__ import annotations

import pytest
import torch

from modelyard.train.augment import _smoothing_matrix, elastic_offsets, random_affine


def _still(images: torch.Tensor, **kwargs: float) -> torch.Tensor:
    """No rotation, zoom or shift: only the elastic field moves pixels."""
    return random_affine(images, max_degrees=0.0, scale=(1.0, 1.0), max_shift=0.0, **kwargs)


def _digitish(n: int = 8) -> torch.Tensor:
    images = torch.zeros(n, 1, 28, 28)
    images[:, :, 6:22, 12:16] = 1.0  # a thick vertical stroke
    images[:, :, 6:9, 8:20] = 1.0
    return images


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keeps_shape_dtype_and_value_range(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    images = torch.rand(6, 1, 28, 28, dtype=dtype) * 3 - 0.4
    out = _still(images, fill=-0.4, elastic_alpha=34.0, elastic_sigma=4.0)
    assert out.shape == images.shape and out.dtype == dtype
    # Bilinear sampling mixes input values and the fill: nothing outside their range.
    assert out.min() >= -0.4 - 1e-5 and out.max() <= images.max() + 1e-5


def test_on_it_moves_ink_and_off_it_changes_nothing() -> None:
    images = _digitish()
    torch.manual_seed(1)
    moved = _still(images, elastic_alpha=34.0, elastic_sigma=4.0)
    assert (moved - images).abs().amax(dim=(1, 2, 3)).min() > 0.3  # every image changes
    assert torch.allclose(moved.sum((1, 2, 3)), images.sum((1, 2, 3)), rtol=0.35)
    torch.manual_seed(1)
    torch.testing.assert_close(_still(images, elastic_alpha=0.0), images, atol=1e-5, rtol=0)


def test_off_it_draws_nothing_so_the_affine_draws_stay_as_they_were() -> None:
    images = torch.rand(4, 1, 28, 28)
    torch.manual_seed(2)
    plain = random_affine(images, max_degrees=10.0, scale=(0.9, 1.1), max_shift=0.1)
    after_plain = torch.rand(1)
    torch.manual_seed(2)
    off = random_affine(
        images, max_degrees=10.0, scale=(0.9, 1.1), max_shift=0.1, elastic_alpha=0.0
    )
    assert torch.equal(plain, off) and torch.equal(torch.rand(1), after_plain)


def test_seeded_is_deterministic() -> None:
    images = _digitish()
    torch.manual_seed(3)
    a = _still(images, elastic_alpha=20.0, elastic_sigma=3.0)
    torch.manual_seed(3)
    assert torch.equal(a, _still(images, elastic_alpha=20.0, elastic_sigma=3.0))


def test_offsets_scale_with_alpha_in_pixels() -> None:
    torch.manual_seed(4)
    one = elastic_offsets(16, 28, 28, alpha=1.0, sigma=4.0)
    torch.manual_seed(4)
    ten = elastic_offsets(16, 28, 28, alpha=10.0, sigma=4.0)
    assert one.shape == (16, 28, 28, 2)
    torch.testing.assert_close(ten, one * 10)
    # alpha=34, sigma=4 moves pixels by about a pixel (grid units: 2 / 28 a pixel).
    rms_pixels = float((ten * 3.4 * 14).pow(2).mean().sqrt())
    assert 0.5 < rms_pixels < 3.0


def _neighbour_correlation(sigma: float) -> float:
    torch.manual_seed(5)
    x = elastic_offsets(32, 28, 28, alpha=10.0, sigma=sigma)[..., 0]
    pairs = torch.stack([x[:, :, :-1].flatten(), x[:, :, 1:].flatten()])
    return float(torch.corrcoef(pairs)[0, 1])


def test_sigma_sets_how_smooth_the_field_is() -> None:
    # A wide Gaussian moves neighbouring pixels together; a narrow one barely smooths.
    assert _neighbour_correlation(4.0) > 0.95
    assert _neighbour_correlation(0.5) < 0.5


def test_a_huge_sigma_stays_cheap_and_finite() -> None:
    out = elastic_offsets(2, 28, 28, alpha=34.0, sigma=1e6)
    assert out.shape == (2, 28, 28, 2) and torch.isfinite(out).all()


def test_the_smoothing_is_a_unit_sum_gaussian_away_from_the_edges() -> None:
    delta = torch.zeros(41)
    delta[20] = 1.0
    smoothed = _smoothing_matrix(41, 4.0, 12, None) @ delta
    assert abs(float(smoothed.sum()) - 1.0) < 1e-5
    assert int(smoothed.argmax()) == 20 and float(smoothed[33]) == 0.0  # 13 > radius 12
    ratio = float(smoothed[24] / smoothed[20])  # one sigma away
    assert abs(ratio - float(torch.exp(torch.tensor(-0.5)))) < 1e-5
