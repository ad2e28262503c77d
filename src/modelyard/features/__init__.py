"""Preprocessing shared by training and serving: the one place inputs become tensors."""

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
