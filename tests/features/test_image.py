from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from modelyard.errors import DataError
from modelyard.features.image import ImageSpec, conform_images, decode_image, to_model_input

SPEC = ImageSpec(height=4, width=6, channels=1, mean=0.5, std=0.25)


def _png(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_normalisation_and_layout() -> None:
    images = np.full((2, 4, 6, 1), 255, dtype=np.uint8)
    images[1] = 0
    x = to_model_input(images, SPEC)
    assert x.dtype == np.float32 and x.shape == (2, 1, 4, 6)
    assert np.allclose(x[0], (1.0 - 0.5) / 0.25) and np.allclose(x[1], (0.0 - 0.5) / 0.25)


def test_wrong_shape_is_rejected_with_expected_shape() -> None:
    with pytest.raises(DataError, match=r"expects \(4, 6, 1\)"):
        to_model_input(np.zeros((1, 5, 5, 1), np.uint8), SPEC)


def test_decode_converts_rgb_of_any_size() -> None:
    rgb = np.zeros((40, 30, 3), np.uint8)
    rgb[..., 0] = 255
    decoded = decode_image(_png(rgb, "RGB"), SPEC)
    assert decoded.shape == (4, 6, 1) and decoded.dtype == np.uint8
    assert 50 < int(decoded.mean()) < 100  # red -> luminance ~76


def test_decode_rejects_non_images() -> None:
    with pytest.raises(DataError, match="not a readable image"):
        decode_image(b"hello, not an image", SPEC)
    with pytest.raises(DataError, match="not a readable image"):
        decode_image(_png(np.zeros((8, 8), np.uint8), "L")[:30], SPEC)


def test_decode_matches_conform_for_arrays() -> None:
    gray = (np.arange(12 * 10) % 256).astype(np.uint8).reshape(12, 10)
    from_bytes = decode_image(_png(gray, "L"), SPEC)
    from_array = conform_images(gray[None, ..., None], SPEC)[0]
    assert np.array_equal(from_bytes, from_array)


def test_spec_round_trip() -> None:
    assert ImageSpec.from_dict(SPEC.to_dict()) == SPEC
    assert SPEC.shape == (1, 4, 6)
