"""Hostile bytes into the image decoder: every failure is a DataError, quickly.

Whatever a client uploads ends up in ``decode_image``; anything it raises other
than DataError would become a 500, and anything slow would tie up a worker.
"""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from modelyard.errors import DataError
from modelyard.features.image import ImageSpec, decode_image

SPEC = ImageSpec(height=8, width=8, channels=1, mean=0.5, std=0.25)
RGB_SPEC = ImageSpec(height=8, width=8, channels=3, mean=0.5, std=0.25)
# Derandomized, as in tests/serve/test_codecs_hostile.py: the same cases every CI run.
FUZZ = settings(
    max_examples=300,
    deadline=2000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _png(size: tuple[int, int] = (12, 10), mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color=100).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny file whose header claims a huge image (the decompression-bomb shape)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    # A few compressed zeros: the file stays ~100 bytes whatever it declares.
    idat = zlib.compress(b"\x00" * 1025, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _decodes_or_refuses(data: bytes, spec: ImageSpec = SPEC) -> None:
    started = time.monotonic()
    try:
        array = decode_image(data, spec)
    except DataError as error:
        assert "send a PNG or JPEG" in str(error)
    else:
        assert array.shape == (spec.height, spec.width, spec.channels)
        assert array.dtype == np.uint8
    assert time.monotonic() - started < 2.0


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_are_refused_with_a_data_error(data: bytes) -> None:
    _decodes_or_refuses(data)


@FUZZ
@given(st.data())
def test_truncated_and_corrupted_pngs_are_refused(data: st.DataObject) -> None:
    png = _png(
        (data.draw(st.integers(1, 64)), data.draw(st.integers(1, 64))),
        data.draw(st.sampled_from(["L", "RGB", "RGBA", "P", "I;16", "1"])),
    )
    cut = data.draw(st.integers(0, len(png)))
    mangled = bytearray(png[:cut])
    for _ in range(data.draw(st.integers(0, 4))):
        if mangled:
            at = data.draw(st.integers(0, len(mangled) - 1))
            mangled[at] = data.draw(st.integers(0, 255))
    _decodes_or_refuses(bytes(mangled), data.draw(st.sampled_from([SPEC, RGB_SPEC])))


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (100_000, 100_000),  # 10^10 pixels: far past Pillow's hard limit
        (50_000, 1_000),  # 5 * 10^7: between the limit and twice it, where Pillow only warns
        (2**31 - 1, 2**31 - 1),
    ],
)
def test_decompression_bombs_are_refused_before_decoding(width: int, height: int) -> None:
    bomb = _png_declaring(width, height)
    assert len(bomb) < 200
    started = time.monotonic()
    with pytest.raises(DataError, match="pixels"):
        decode_image(bomb, SPEC)
    assert time.monotonic() - started < 1.0


def test_the_pixel_limit_is_set() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None
    assert 0 < Image.MAX_IMAGE_PIXELS <= 40_000_000


def test_text_and_empty_uploads_are_refused() -> None:
    for data in (b"", b"\xff\xfe\xfd invalid utf-8 \xc3\x28", b"hello, world" * 1000, b"GIF89a"):
        with pytest.raises(DataError):
            decode_image(data, SPEC)
