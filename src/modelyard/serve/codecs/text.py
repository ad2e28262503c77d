"""Text on the wire: the ``/v1`` JSON body, and v2 BYTES tensors (JSON and binary).

``/v1/models/{name}:predict`` takes ``{"text": "..."}`` or ``{"texts": ["...", ...]}``
(optionally with ``"min_confidence": 0.8``, this request's threshold) and answers one
prediction per text. The v2 protocol carries texts as a BYTES
tensor: in JSON as a list of strings, in Triton's binary extension as elements each
prefixed by its byte length (uint32, little-endian). Decoding checks everything a
client can get wrong (wrong type, empty or whitespace-only text, bytes that are not
UTF-8) and raises :class:`ClientError` naming the text.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modelyard.serve.errors import ClientError, PayloadTooLarge


def _check_texts(texts: list[Any], where: str, max_instances: int) -> list[str]:
    if not texts:
        raise ClientError(f"{where} holds no texts; send at least one")
    if len(texts) > max_instances:
        raise PayloadTooLarge(f"{len(texts)} texts exceed the limit of {max_instances} per request")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ClientError(f"{where}[{index}] must be a string, got {type(text).__name__}")
        if not text.strip():
            raise ClientError(f"{where}[{index}] is empty or only whitespace; send some words")
    return texts


def check_min_confidence(value: Any, where: str) -> float:
    """A request's own ``min_confidence``: a number in [0, 1), else a ClientError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ClientError(
            f"{where} must be a number in [0, 1) (answers below it get the low-confidence "
            f"label; 0 never does), got {value!r}"
        )
    return float(value)


@dataclass(frozen=True)
class TextRequest:
    """A decoded ``/v1`` text body."""

    texts: list[str]
    min_confidence: float | None = None
    """The request's own threshold, overriding the served one; None: the served one."""


def decode_text_request(body: bytes, max_instances: int) -> list[str]:
    """``{"text": "..."}`` or ``{"texts": [...]}`` -> the texts."""
    return decode_text_body(body, max_instances).texts


def decode_text_body(body: bytes, max_instances: int) -> TextRequest:
    """``{"text": "..."}`` or ``{"texts": [...]}``, and an optional ``"min_confidence"``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # orjson names invalid UTF-8 itself ("str is not valid UTF-8: surrogates ...").
        raise ClientError(f"request body is not valid UTF-8 JSON: {error}") from None
    if not isinstance(payload, dict) or ("text" in payload) == ("texts" in payload):
        raise ClientError('send a JSON object with either "text": "..." or "texts": ["...", ...]')
    if "text" in payload:
        text = payload["text"]
        if not isinstance(text, str):
            raise ClientError(f'"text" must be a string, got {type(text).__name__}')
        if not text.strip():
            raise ClientError('"text" is empty or only whitespace; send some words')
        texts = [text]
    else:
        texts = payload["texts"]
        if not isinstance(texts, list):
            raise ClientError('"texts" must be a list of strings')
        texts = _check_texts(texts, "texts", max_instances)
    threshold = payload.get("min_confidence")
    if threshold is None:
        return TextRequest(texts)
    return TextRequest(texts, check_min_confidence(threshold, '"min_confidence"'))


def encode_text_predictions(
    probabilities: np.ndarray,
    labels: tuple[str, ...],
    model: str,
    version: str,
    request_id: str,
    truncated: np.ndarray,
    max_chars: int,
    min_confidence: float = 0.0,
    low_confidence_label: str = "unknown",
) -> bytes:
    """One entry per text: label, confidence, every class's probability, and whether
    the text was cut at ``max_chars`` before the model saw it. Below
    ``min_confidence`` the label is ``low_confidence_label`` (the served setting: the
    bundle's, a serve setting's or the request's); the confidence is reported as is."""
    predictions = []
    for row, cut in zip(probabilities, truncated, strict=True):
        best = int(row.argmax())
        predictions.append(
            {
                "label": labels[best] if row[best] >= min_confidence else low_confidence_label,
                "confidence": float(row[best]),
                "probabilities": {label: float(p) for label, p in zip(labels, row, strict=True)},
                "truncated": bool(cut),
            }
        )
    return orjson.dumps(
        {
            "model_name": model,
            "model_version": version,
            "request_id": request_id,
            "max_chars": max_chars,
            "predictions": predictions,
        }
    )


def decode_bytes_json(data: Any, count: int, where: str) -> list[Any]:
    """The ``data`` of a JSON BYTES tensor: strings (nested lists allowed)."""
    values = data
    # Flatten nested rows only while every element is a row: a ragged mix is left
    # as it is and refused below (or by the per-text checks), never iterated.
    while isinstance(values, list) and values and all(isinstance(v, list) for v in values):
        values = [v for row in values for v in row]
    if not isinstance(values, list) or len(values) != count:
        raise ClientError(f"{where}: shape needs {count} strings in 'data'")
    return values


def decode_bytes_binary(blob: bytes | memoryview, count: int, where: str) -> list[str]:
    """Triton's binary BYTES: ``count`` elements, each a uint32 LE length then the bytes."""
    texts: list[str] = []
    offset = 0
    view = memoryview(blob)
    for index in range(count):
        if offset + 4 > len(view):
            raise ClientError(f"{where}: binary BYTES data ends before element {index}")
        (size,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + size > len(view):
            raise ClientError(f"{where}: element {index} says {size} bytes, fewer remain")
        try:
            texts.append(bytes(view[offset : offset + size]).decode("utf-8"))
        except UnicodeDecodeError as error:
            raise ClientError(
                f"{where}: element {index} is not valid UTF-8 (byte {error.start}); send UTF-8 text"
            ) from None
        offset += size
    if offset != len(view):
        raise ClientError(f"{where}: {len(view) - offset} bytes left after {count} elements")
    return texts


def encode_bytes_binary(texts: Sequence[str]) -> bytes:
    """The client side of :func:`decode_bytes_binary` (tests and ``modelyard bench``)."""
    parts = []
    for text in texts:
        data = text.encode("utf-8")
        parts.append(struct.pack("<I", len(data)) + data)
    return b"".join(parts)


def texts_from_tensor(values: list[Any], where: str, max_instances: int) -> list[str]:
    """A decoded BYTES tensor's elements -> checked texts (bytes must be UTF-8)."""
    texts: list[Any] = []
    for index, value in enumerate(values):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise ClientError(f"{where}[{index}] is not valid UTF-8") from None
        texts.append(value)
    return _check_texts(texts, where, max_instances)
