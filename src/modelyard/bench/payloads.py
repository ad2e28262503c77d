"""Request bodies, built once before the clock starts, and the checks that precede a run.

The v2 tensor's shape comes from the server's own model metadata, so one command
benchmarks any model without the user spelling out its input. Before any load,
one real request with the exact body is sent: a payload the server refuses (404
unknown model, 401 API key, 400 shape) fails the command with the server's own
message instead of producing a table full of errors.

The metadata also says what kind of input the model takes: a ``BYTES`` input is a
text model, so it gets text (a sample sentence unless ``--text`` gives one), not
pixels. Without ``--model``, the model is the one the server serves
(:func:`served_models`).
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from modelyard.bench.connection import Endpoint
from modelyard.bench.loadgen import infer_path
from modelyard.bench.protocol import Protocol
from modelyard.errors import DataError, ServiceError, UsageError

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # as the engine: no proxy
SAMPLE_TEXT = "The committee will meet again on Thursday to discuss the new budget."
"""Sent to a text model when ``--text`` is not given: one ordinary sentence."""
_MODEL_INFO = re.compile(r"^modelyard_model_info\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)", re.M)
_MODEL_LABEL = re.compile(r'(?:^|,)model="(?P<name>(?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Payload:
    """One request body and the headers that describe it (content type, v2 header length)."""

    body: bytes
    headers: dict[str, str]
    description: str
    """What is sent, for the report: ``v2 JSON FP32 [1, 1, 8, 8], 1.2 KB``."""


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KB"


def _server_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        message = data.get("error") or data.get("detail") or data.get("message") or data
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace")
    return " ".join(str(message).split())[:300]


def http_request(
    url: str, body: bytes | None, headers: dict[str, str], timeout_s: float = 10.0
) -> tuple[int, bytes]:
    """One plain request (not on the hot path); an unreachable server is a user error."""
    request = urllib.request.Request(
        url, data=body, headers=headers, method="GET" if body is None else "POST"
    )
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServiceError(f"cannot reach {url}: {reason}; is the server running?") from None
    except ValueError as error:  # urllib's "unknown url type"
        raise UsageError(f"cannot request {url}: {error}; pass e.g. http://host:8000") from None


def fetch_metadata(url: str, model: str, headers: dict[str, str]) -> dict[str, Any]:
    """The v2 model metadata (``GET /v2/models/{model}``): input names, shapes, datatypes."""
    where = f"{url.rstrip('/')}/v2/models/{model}"
    status, body = http_request(where, None, headers)
    if status != 200:
        raise ServiceError(f"{where} answered {status}: {_server_message(body)}")
    try:
        metadata = json.loads(body)
        metadata["inputs"][0]["shape"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ServiceError(f"{where} did not return v2 model metadata; pass --shape") from None
    return cast("dict[str, Any]", metadata)


def _names(document: Any) -> list[str]:
    """Model names from a model list: ``{"models": [{"name": ...}]}``, ``[{"name": ...}]``
    (the v2 repository index) or a list of names."""
    if isinstance(document, dict):
        document = document.get("models")
    if not isinstance(document, list):
        return []
    names = [item.get("name") if isinstance(item, dict) else item for item in document]
    return list(dict.fromkeys(n for n in names if isinstance(n, str) and n))


def _names_in_metrics(text: str) -> list[str]:
    """The model a modelyard server serves now: ``modelyard_model_info{model=...} 1``."""
    names = []
    for match in _MODEL_INFO.finditer(text):
        label = _MODEL_LABEL.search(match["labels"])
        with contextlib.suppress(ValueError):
            if label and float(match["value"]) == 1:
                names.append(label["name"])
    return list(dict.fromkeys(names))


def served_models(url: str, headers: dict[str, str]) -> list[str]:
    """The names of the models the server at ``url`` serves, or [] if it does not say.

    Asked in turn: ``GET /v2/models`` (a model list), ``POST /v2/repository/index``
    (Triton's and MLServer's repository extension), then ``GET /metrics``
    (``modelyard_model_info``, where a modelyard server names its current model).
    """
    base = url.rstrip("/")
    status, body = http_request(f"{base}/v2/models", None, headers)
    with contextlib.suppress(ValueError):
        if status == 200 and (names := _names(json.loads(body))):
            return names
    index_headers = {**headers, "Content-Type": "application/json"}
    status, body = http_request(f"{base}/v2/repository/index", b"{}", index_headers)
    with contextlib.suppress(ValueError):
        if status == 200 and (names := _names(json.loads(body))):
            return names
    status, body = http_request(f"{base}/metrics", None, headers)
    if status == 200:
        return _names_in_metrics(body.decode("utf-8", "replace"))
    return []


def resolve_model(url: str, model: str | None, headers: dict[str, str]) -> str:
    """``model``, or the one model the server serves; several or none is an error."""
    if model:
        return model
    names = served_models(url, headers)
    if len(names) == 1:
        return names[0]
    if names:
        raise UsageError(
            f"{url} serves {len(names)} models ({', '.join(names)}); pass --model with one"
        )
    raise UsageError(f"{url} does not list the models it serves; pass --model NAME")


def is_text_model(metadata: dict[str, Any]) -> bool:
    """A model whose (first) input is a BYTES tensor takes text."""
    return str(metadata["inputs"][0].get("datatype", "")).upper() == "BYTES"


def input_spec(metadata: dict[str, Any]) -> tuple[str, tuple[int, ...]]:
    """The first input's name and shape without the batch dimension."""
    spec = metadata["inputs"][0]
    shape = tuple(int(d) for d in spec["shape"][1:])
    if any(d < 1 for d in shape):
        raise UsageError(
            f"input '{spec['name']}' has a variable dimension {spec['shape']}; pass --shape"
        )
    return str(spec["name"]), shape


def _pixel_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A model input shape (C, H, W) -> the (H, W) or (H, W, C) pixels the v1 API takes."""
    if len(shape) == 2:
        return shape
    if len(shape) == 3 and shape[0] in (1, 3, 4):  # channels first, as modelyard exports
        return shape[1:] if shape[0] == 1 else (*shape[1:], shape[0])
    if len(shape) == 3:
        return shape[:2] if shape[2] == 1 else shape
    raise UsageError(f"cannot send shape {list(shape)} as images; pass --shape C,H,W")


def tensor_payload(
    protocol: Protocol,
    shape: tuple[int, ...],
    *,
    batch: int = 1,
    binary: bool = False,
    input_name: str = "input",
    seed: int = 0,
) -> Payload:
    """Random data of the model's input shape: FP32 for v2, uint8 pixels for v1.

    Random values rather than zeros, so a JSON body has the length real data has.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    if protocol == "v2":
        from modelyard.serve.codecs.v2 import encode_request

        array = rng.standard_normal((batch, *shape), dtype=np.float32)
        body, headers = encode_request({input_name: array}, binary=binary)
        form = "binary" if binary else "JSON"
        return Payload(body, headers, f"v2 {form} FP32 {list(array.shape)}, {_size(len(body))}")
    if binary:
        raise UsageError("--binary is a v2 extension; drop it or use --protocol v2")
    pixels = rng.integers(0, 256, (batch, *_pixel_shape(shape)), dtype=np.uint8)
    body = json.dumps({"instances": pixels.tolist()}, separators=(",", ":")).encode()
    return Payload(
        body,
        {"Content-Type": "application/json"},
        f"v1 JSON uint8 {list(pixels.shape)}, {_size(len(body))}",
    )


def image_payload(path: Path, *, batch: int = 1) -> Payload:
    """A real image file uploaded as multipart/form-data (``batch`` copies), for /v1."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"cannot read image {path}: {error.strerror}") from None
    boundary = uuid.uuid4().hex
    content_type = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
    part = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{Path(path).name}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
    )
    body = part * batch + f"--{boundary}--\r\n".encode()
    return Payload(
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        f"v1 multipart {batch} x {Path(path).name}, {_size(len(body))}",
    )


def text_payload(
    protocol: Protocol, text: str, *, batch: int = 1, input_name: str = "text"
) -> Payload:
    """Text for text models: ``{"text": ...}`` on /v1, a BYTES tensor on v2."""
    if protocol == "v2":
        document: dict[str, Any] = {
            "inputs": [
                {"name": input_name, "shape": [batch], "datatype": "BYTES", "data": [text] * batch}
            ]
        }
    else:
        document = {"text": text if batch == 1 else [text] * batch}
    body = json.dumps(document, separators=(",", ":")).encode()
    return Payload(
        body,
        {"Content-Type": "application/json"},
        f"{protocol} JSON text x {batch}, {_size(len(body))}",
    )


def build_payload(
    url: str,
    model: str,
    protocol: Protocol,
    *,
    headers: dict[str, str],
    batch: int = 1,
    binary: bool = False,
    image: Path | None = None,
    text: str | None = None,
    shape: tuple[int, ...] | None = None,
) -> Payload:
    """The body to send: an image file, text, or a tensor shaped by the model's metadata."""
    if batch < 1:
        raise UsageError("--batch must be at least 1")
    if image is not None and text is not None:
        raise UsageError("pass --image or --text, not both")
    if image is not None:
        if protocol != "v1":
            raise UsageError("--image uploads a file to /v1; add --protocol v1")
        return image_payload(image, batch=batch)
    # The metadata says whether the model takes text, and the input's name and shape;
    # only --text with v1 (no name needed) or --shape (the user says pixels) skip it.
    if (text is not None and protocol == "v1") or (text is None and shape is not None):
        metadata = None
    else:
        metadata = fetch_metadata(url, model, headers)
    sample = text is None and metadata is not None and is_text_model(metadata)
    if text is not None or sample:
        name = str(metadata["inputs"][0]["name"]) if metadata else "text"
        payload = text_payload(protocol, text or SAMPLE_TEXT, batch=batch, input_name=name)
        if not sample:
            return payload
        # A text model: pixels would only earn 400s, so it gets a sample sentence.
        described = f"{payload.description}, a sample sentence (--text to choose)"
        return Payload(payload.body, payload.headers, described)
    name, found = input_spec(metadata) if metadata else ("input", ())
    return tensor_payload(protocol, shape or found, batch=batch, binary=binary, input_name=name)


def preflight(
    url: str, protocol: Protocol, model: str, payload: Payload, headers: dict[str, str]
) -> None:
    """Send the exact request once; a refusal is the user's to fix, so it stops the run."""
    endpoint = Endpoint.parse(url)
    scheme = "https" if endpoint.tls else "http"
    where = f"{scheme}://{endpoint.authority}{endpoint.prefix}{infer_path(protocol, model)}"
    status, body = http_request(where, payload.body, {**payload.headers, **headers}, 30.0)
    if not 200 <= status < 300:
        raise ServiceError(f"POST {where} answered {status}: {_server_message(body)}")
