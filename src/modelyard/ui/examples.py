"""Inputs a person makes in the browser, shaped like the digits a model learned from.

Handwritten digit datasets centre each digit on its ink and scale it to fill the
frame (MNIST: a 20 px digit in 28 px); a digit drawn small in a corner of a big
canvas would reach the model as a few grey pixels. Both the drawing canvas and
the font example go through :func:`centred` for that reason.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def centred(image: Image.Image, size: int = 28, margin: float = 0.2) -> Image.Image:
    """Greyscale, cropped to its ink, padded square with ``margin`` and resized."""
    grey = image.convert("L")
    box = grey.getbbox()
    if box is None:  # no ink at all: nothing to centre
        return grey.resize((size, size))
    ink = grey.crop(box)
    side = int(max(ink.size) * (1 + margin))
    square = Image.new("L", (side, side), 0)
    square.paste(ink, ((side - ink.width) // 2, (side - ink.height) // 2))
    return square.resize((size, size), Image.Resampling.LANCZOS)


def digit_png(digit: int, size: int = 28) -> bytes:
    """A bold white digit on black, drawn with the bundled font, as PNG bytes."""
    canvas = Image.new("L", (4 * size, 4 * size), 0)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=3 * size)
    draw.text((size // 2, size // 4), str(digit), fill=255, font=font, stroke_width=size // 7)
    return png_bytes(centred(canvas, size))


def drawing_png(rgba: np.ndarray, size: int = 28) -> bytes:
    """A canvas drawing (H x W x 4, white strokes on black) as a centred PNG."""
    return png_bytes(centred(Image.fromarray(np.asarray(rgba, dtype=np.uint8)), size))


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image.astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def has_ink(array: np.ndarray | None) -> bool:
    """Whether a canvas drawing holds anything but its black background."""
    return array is not None and bool(np.asarray(array)[..., :3].max() > 0)
