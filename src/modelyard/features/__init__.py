"""Preprocessing shared by training and serving: the one place inputs become tensors.

Owns: image and text specs and the functions that turn raw inputs into model input.

May import: only the foundations; never torch, so serving can use it.
"""

from modelyard.features.image import ImageSpec, conform_images, decode_image, to_model_input
from modelyard.features.text import (
    EncodedTexts,
    TextSpec,
    encode_texts,
    normalise_texts,
    strip_punctuation,
)

__all__ = [
    "EncodedTexts",
    "ImageSpec",
    "TextSpec",
    "conform_images",
    "decode_image",
    "encode_texts",
    "normalise_texts",
    "strip_punctuation",
    "to_model_input",
]
