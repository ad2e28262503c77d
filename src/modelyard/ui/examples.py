"""Example inputs a person can try without a file at hand: a digit drawn with a font."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def digit_png(digit: int, size: int = 28) -> bytes:
    """A white digit on black, bold, centred and filling the frame, as PNG bytes.

    Drawn large and then cropped to its ink, so that it looks like a handwritten
    dataset digit at any model input size rather than a small glyph in a margin.
    """
    canvas = Image.new("L", (4 * size, 4 * size), 0)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=3 * size)
    draw.text(
        (size // 2, size // 4),
        str(digit),
        fill=255,
        font=font,
        stroke_width=size // 7,
        stroke_fill=255,
    )
    ink = canvas.crop(canvas.getbbox())
    side = int(max(ink.size) * 1.2)
    square = Image.new("L", (side, side), 0)
    square.paste(ink, ((side - ink.width) // 2, (side - ink.height) // 2))
    return png_bytes(np.asarray(square.resize((size, size), Image.Resampling.LANCZOS)))


def png_bytes(array: np.ndarray) -> bytes:
    """uint8 (H, W) or (H, W, C) -> PNG; an RGBA drawing is flattened to grey."""
    image = Image.fromarray(array.astype(np.uint8))
    if image.mode == "RGBA":
        image = image.convert("L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def has_ink(array: np.ndarray | None) -> bool:
    """Whether a canvas drawing holds anything but its black background."""
    return array is not None and bool(np.asarray(array)[..., :3].max() > 0)
