"""Preprocessing shared by training and serving: the one place inputs become tensors."""

from modelyard.features.image import ImageSpec, conform_images, decode_image, to_model_input

__all__ = ["ImageSpec", "conform_images", "decode_image", "to_model_input"]
