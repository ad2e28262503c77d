"""Image preprocessing: decoding, resizing, channel conversion and normalisation.

Training, export, evaluation, batch prediction and the server all call these
functions, so a served prediction sees exactly the pixels the model trained on.
Numpy and Pillow only: the serving install has no torch.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from modelyard.errors import DataError

# Decompression bombs: refuse images with more pixels than this. Pillow itself only
# warns between this and twice this, so decode_image checks the declared size too.
Image.MAX_IMAGE_PIXELS = 40_000_000


@dataclass(frozen=True)
class ImageSpec:
    """How raw images become model input; stored in every bundle."""

    height: int
    width: int
    channels: int
    mean: float
    std: float

    @property
    def shape(self) -> tuple[int, int, int]:
        """Model input shape without the batch dimension (C, H, W)."""
        return (self.channels, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "image", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageSpec:
        fields = {k: data[k] for k in ("height", "width", "channels", "mean", "std")}
        return cls(**fields)


def _pil_mode(channels: int) -> str:
    return "L" if channels == 1 else "RGB"


def _to_array(image: Image.Image, spec: ImageSpec) -> np.ndarray:
    image = image.convert(_pil_mode(spec.channels))
    if image.size != (spec.width, spec.height):
        image = image.resize((spec.width, spec.height), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


# What Pillow raises for bytes that are not a complete image: besides OSError it
# lets parser errors escape (a corrupt PNG chunk raises SyntaxError, found by fuzzing).
_UNREADABLE = (
    UnidentifiedImageError,
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


def _refuse_bombs(image: Image.Image) -> None:
    """Refuse, from the header alone, an image declaring more pixels than the limit.

    A PNG of a few hundred bytes can declare 50 million pixels; decoding it would
    cost hundreds of MB and seconds of CPU for one request.
    """
    pixels = image.width * image.height
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and pixels > limit:
        raise Image.DecompressionBombError(
            f"image size ({image.width}x{image.height} = {pixels} pixels) exceeds the "
            f"limit of {limit} pixels"
        )


_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")
"""A Python object's default repr, as Pillow puts the file object in its messages."""


def _unreadable(name: str, error: Exception) -> DataError:
    """Why Pillow refused, in words for the sender, without its internals.

    Pillow's own messages name the file object (``<_io.BytesIO object at 0x...>``),
    which means nothing to whoever sent the bytes.
    """
    if isinstance(error, UnidentifiedImageError):
        return DataError(
            f"{name} is not a readable image: not a PNG or JPEG (nor another format "
            "Pillow knows); send a PNG or JPEG file"
        )
    if isinstance(error, Image.DecompressionBombError):
        return DataError(
            f"{name} is not a readable image: {error}; send a PNG or JPEG of fewer pixels"
        )
    reason = _OBJECT_REPR.sub("the data", " ".join(str(error).split())) or type(error).__name__
    return DataError(
        f"{name} is not a readable image (damaged or truncated: {reason}); send a PNG or JPEG file"
    )


def decode_image(
    source: bytes | str | Path, spec: ImageSpec, name: str | None = None
) -> np.ndarray:
    """Decode a PNG/JPEG/... file or bytes into uint8 (H, W, C) at the spec's size.

    ``name`` says in errors what the bytes are (``upload 'file'``); a path names itself.
    """
    if name is None:
        name = "uploaded bytes" if isinstance(source, bytes) else str(source)
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as error:
        raise DataError(f"cannot read image {name}: {error.strerror}") from error
    try:
        with handle, Image.open(handle) as image:
            _refuse_bombs(image)
            image.load()
            return _to_array(image, spec)
    except _UNREADABLE as error:
        raise _unreadable(name, error) from error


def conform_images(images: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """Resize and convert a uint8 (N, H, W, C) batch to the spec's size and channels."""
    if images.shape[1:] == (spec.height, spec.width, spec.channels):
        return images
    converted = [
        _to_array(Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image), spec)
        for image in images
    ]
    return np.stack(converted).astype(np.uint8)


def to_model_input(images: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """uint8 (N, H, W, C) -> normalised float32 (N, C, H, W), the ONNX graph's input."""
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1:] != (spec.height, spec.width, spec.channels):
        raise DataError(
            f"images have shape {images.shape[1:]}, the model expects "
            f"{(spec.height, spec.width, spec.channels)} (height, width, channels)"
        )
    scaled = images.astype(np.float32) * np.float32(1.0 / 255.0)
    normalised = (scaled - np.float32(spec.mean)) / np.float32(spec.std)
    return np.ascontiguousarray(normalised.transpose(0, 3, 1, 2))
