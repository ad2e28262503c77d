"""The simple ``/v1`` API: images (multipart upload or JSON instances) in, labels out."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from modelyard.errors import DataError
from modelyard.features.image import ImageSpec, conform_images, decode_image
from modelyard.serve.errors import ClientError


def decode_files(
    files: list[bytes], spec: ImageSpec, names: Sequence[str] | None = None
) -> np.ndarray:
    """Uploaded image files (any size, PNG/JPEG/...) -> uint8 (N, H, W, C).

    ``names`` says in errors which upload was refused (``upload 'file' (cat.png)``);
    without them the files are numbered.
    """
    images = []
    for index, data in enumerate(files):
        name = names[index] if names is not None else f"file {index}"
        try:
            images.append(decode_image(data, spec, name=name))
        except DataError as error:
            raise ClientError(str(error)) from None
    return np.stack(images)


def _instance(value: Any, index: int, spec: ImageSpec) -> np.ndarray:
    if isinstance(value, dict) and isinstance(value.get("b64"), str):
        try:
            raw = base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise ClientError(f"instances[{index}].b64 is not valid base64") from None
        try:
            return decode_image(raw, spec, name=f"instances[{index}].b64")
        except DataError as error:
            raise ClientError(str(error)) from None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise ClientError(
            f"instances[{index}] must be a pixel array (H x W or H x W x C, 0..255) "
            'or {"b64": <base64 PNG/JPEG>}'
        ) from None
    if array.ndim == 2:
        array = array[..., None]
    expected = (spec.height, spec.width, spec.channels)
    if array.shape != expected:
        raise ClientError(
            f"instances[{index}] has shape {list(array.shape)}; expected {list(expected)} (H, W, C)"
        )
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 255:
        raise ClientError(f"instances[{index}] must hold pixel values in 0..255")
    return np.rint(array).astype(np.uint8)


def decode_instances(body: bytes, spec: ImageSpec, max_instances: int) -> np.ndarray:
    """``{"instances": [...]}`` -> uint8 (N, H, W, C) at the model's size."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ClientError(f"request body is not valid JSON: {error}") from None
    if not isinstance(payload, dict) or "instances" not in payload:
        raise ClientError(
            'send {"instances": [...]} as JSON, or upload image files as multipart/form-data'
        )
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise ClientError("'instances' must be a non-empty list")
    if len(instances) > max_instances:
        raise ClientError(
            f"{len(instances)} instances exceed the limit of {max_instances} per request", 413
        )
    return conform_images(np.stack([_instance(v, i, spec) for i, v in enumerate(instances)]), spec)


def encode_predictions(
    probabilities: np.ndarray, labels: tuple[str, ...], model: str, version: str, request_id: str
) -> bytes:
    """One entry per instance: label, confidence and the probability of every class."""
    predictions = []
    for row in probabilities:
        best = int(row.argmax())
        predictions.append(
            {
                "label": labels[best],
                "confidence": float(row[best]),
                "probabilities": {label: float(p) for label, p in zip(labels, row, strict=True)},
            }
        )
    return orjson.dumps(
        {
            "model_name": model,
            "model_version": version,
            "request_id": request_id,
            "predictions": predictions,
        }
    )
