"""Open Inference Protocol (KServe v2) REST tensors, JSON and Triton's binary extension.

tritonclient sends tensors as raw bytes after a JSON header by default (the
``Inference-Header-Content-Length`` header gives the JSON's length, each binary
input says its size in ``parameters.binary_data_size``), so both forms are
decoded here and answered in the form the client asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from modelyard.serve.codecs import text as text_codec
from modelyard.serve.codecs import v2_simd
from modelyard.serve.errors import ClientError

HEADER_LENGTH = "inference-header-content-length"

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
_NAMES = {dtype: name for name, dtype in DATATYPES.items()}


def datatype_of(array: np.ndarray) -> str:
    return _NAMES[array.dtype]


@dataclass
class InferRequest:
    inputs: dict[str, np.ndarray]
    id: str | None = None
    outputs: list[tuple[str, bool]] | None = None
    """Requested outputs and whether each goes back as binary; None means all, as JSON."""
    binary_output: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)


def _shape(value: Any, where: str) -> tuple[int, ...]:
    # bool is an int in Python; JSON's true/false are not dimensions.
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise ClientError(f"{where}: 'shape' must be a list of non-negative integers")
    return tuple(value)


def _flatten(data: Any) -> list[Any]:
    """Nested JSON lists -> one flat list (the protocol allows both layouts).

    Iterative, so a body nested a thousand levels deep is refused by the shape
    check rather than overflowing the stack.
    """
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    pending: list[Any] = [data]
    while pending:
        item = pending.pop()
        if not isinstance(item, list):
            flat.append(item)
        elif item and isinstance(item[0], list):
            pending.extend(reversed(item))
        else:
            flat.extend(item)
    return flat


def _parameters(spec: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ClientError(f"{where}: 'parameters' must be an object")
    return parameters


def _json_tensor(data: Any, dtype: np.dtype[Any], shape: tuple[int, ...], where: str) -> np.ndarray:
    # flat float64 from v2_simd (numbers only, checked there), else the JSON's lists
    values: np.ndarray | list[Any] = data if isinstance(data, np.ndarray) else _flatten(data)
    if len(values) != math.prod(shape):
        raise ClientError(
            f"{where}: shape {list(shape)} needs {math.prod(shape)} values, got {len(values)}"
        )
    if isinstance(values, np.ndarray):
        return values.astype(dtype).reshape(shape)
    # One C-level conversion, then a dtype check: a per-value Python scan here cost
    # ~18% of the server's time at 784 values per request (py-spy, 2026-11-23).
    try:
        array = np.asarray(values)
    except (ValueError, TypeError, OverflowError) as error:
        raise ClientError(f"{where}: 'data' is not numeric: {error}") from None
    if array.dtype.kind not in "biuf":
        raise ClientError(f"{where}: 'data' must hold numbers only")
    if dtype.kind in "iub":
        if array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
            raise ClientError(f"{where}: {_NAMES[dtype]} data must be integers")
        info = np.iinfo(dtype) if dtype.kind in "iu" else None
        if info is not None and array.size and (array.min() < info.min or array.max() > info.max):
            raise ClientError(f"{where}: values out of range for {_NAMES[dtype]}")
    return array.astype(dtype).reshape(shape)


def decode_request(
    body: bytes, header_length: int | None = None, *, fast: bool = True
) -> InferRequest:
    """Parse an infer request body (JSON, or JSON header + binary tensors).

    ``fast``: read the JSON with pysimdjson where it is installed and the body is one
    it reads as orjson does (:mod:`~modelyard.serve.codecs.v2_simd`); the result and
    every error are the same either way.
    """
    header, binary = (
        (body, b"") if header_length is None else (body[:header_length], body[header_length:])
    )
    if header_length is not None and not 0 <= header_length <= len(body):
        raise ClientError(f"Inference-Header-Content-Length {header_length} exceeds the body")
    payload = v2_simd.parse(header) if fast else None
    if payload is None:
        try:
            payload = orjson.loads(header)
        except orjson.JSONDecodeError as error:
            raise ClientError(f"request body is not valid JSON: {error}") from None
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("inputs"), list)
        or not payload["inputs"]
    ):
        raise ClientError("request must be a JSON object with a non-empty 'inputs' list")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ClientError("'parameters' must be an object")
    offset = 0
    inputs: dict[str, np.ndarray] = {}
    for index, spec in enumerate(payload["inputs"]):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ClientError(f"inputs[{index}] must be an object with a 'name'")
        where = f"input '{spec['name']}'"
        shape = _shape(spec.get("shape"), where)
        size = _parameters(spec, where).get("binary_data_size")
        datatype = spec.get("datatype")
        if datatype == "BYTES":  # texts: an object array of str
            if size is not None and (not isinstance(size, int) or offset + size > len(binary)):
                raise ClientError(f"{where}: body holds fewer binary bytes than announced")
            if size is not None:
                values: list[Any] = text_codec.decode_bytes_binary(
                    binary[offset : offset + size], math.prod(shape), where
                )
                offset += size
            elif "data" in spec:
                values = text_codec.decode_bytes_json(spec["data"], math.prod(shape), where)
            else:
                raise ClientError(f"{where}: give 'data' or parameters.binary_data_size")
            tensor = np.empty(len(values), dtype=object)
            tensor[:] = values
            inputs[spec["name"]] = tensor.reshape(shape)
            continue
        dtype = DATATYPES.get(datatype) if isinstance(datatype, str) else None
        if dtype is None:
            raise ClientError(f"{where}: datatype must be one of {', '.join(DATATYPES)}, BYTES")
        if size is not None:
            if not isinstance(size, int) or size != math.prod(shape) * dtype.itemsize:
                raise ClientError(f"{where}: binary_data_size does not match shape and datatype")
            if offset + size > len(binary):
                raise ClientError(f"{where}: body holds fewer binary bytes than announced")
            inputs[spec["name"]] = np.frombuffer(
                binary, dtype=dtype, count=math.prod(shape), offset=offset
            ).reshape(shape)
            offset += size
        elif "data" in spec:
            inputs[spec["name"]] = _json_tensor(spec["data"], dtype, shape, where)
        else:
            raise ClientError(f"{where}: give 'data' or parameters.binary_data_size")
    outputs = None
    if payload.get("outputs") is not None:
        if not isinstance(payload["outputs"], list):
            raise ClientError("'outputs' must be a list")
        outputs = []
        for spec in payload["outputs"]:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise ClientError("each requested output needs a 'name'")
            where = f"output '{spec['name']}'"
            binary_flag = _flag(_parameters(spec, where), "binary_data", where)
            outputs.append((spec["name"], binary_flag))
    request_id = payload.get("id")
    return InferRequest(
        inputs=inputs,
        id=None if request_id is None else str(request_id),
        outputs=outputs,
        binary_output=_flag(parameters, "binary_data_output", "the request"),
        parameters=parameters,
    )


def _flag(parameters: dict[str, Any], name: str, where: str) -> bool:
    """A boolean parameter: JSON true or false. The string "false" was read as true."""
    value = parameters.get(name, False)
    if not isinstance(value, bool):
        raise ClientError(f"{where}: parameters.{name} must be true or false, not {value!r}")
    return value


def _describe(tensors: list[tuple[str, np.ndarray, bool]]) -> tuple[list[dict[str, Any]], bytes]:
    """Tensor descriptions for a JSON header, plus the raw bytes of the binary ones."""
    described: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, array, binary in tensors:
        if array.dtype == object:  # BYTES: strings (client side, for texts)
            texts = [str(t) for t in array.ravel()]
            entry_bytes: dict[str, Any] = {
                "name": name,
                "shape": list(array.shape),
                "datatype": "BYTES",
            }
            if binary:
                blob = text_codec.encode_bytes_binary(texts)
                entry_bytes["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry_bytes["data"] = texts
            described.append(entry_bytes)
            continue
        array = np.ascontiguousarray(array)
        entry: dict[str, Any] = {
            "name": name,
            "shape": list(array.shape),
            "datatype": datatype_of(array),
        }
        if binary:
            blob = array.tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = array.ravel().tolist()
        described.append(entry)
    return described, b"".join(blobs)


def _body(payload: dict[str, Any], blob: bytes) -> tuple[bytes, dict[str, str]]:
    header = orjson.dumps(payload)
    if not blob:
        return header, {"content-type": "application/json"}
    return header + blob, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }


def encode_response(
    model_name: str,
    model_version: str,
    outputs: dict[str, np.ndarray],
    request: InferRequest,
) -> tuple[bytes, dict[str, str]]:
    """Answer with the requested outputs; binary ones follow the JSON header as raw bytes."""
    wanted = request.outputs or [(name, request.binary_output) for name in outputs]
    described, blob = _describe(
        [(name, outputs[name], binary or request.binary_output) for name, binary in wanted]
    )
    payload: dict[str, Any] = {
        "model_name": model_name,
        "model_version": model_version,
        "outputs": described,
    }
    if request.id is not None:
        payload["id"] = request.id
    return _body(payload, blob)


def encode_request(
    inputs: dict[str, np.ndarray],
    binary: bool = False,
    outputs: list[str] | None = None,
    request_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The client side (used by ``modelyard bench`` and tests): arrays -> request body."""
    described, blob = _describe([(name, array, binary) for name, array in inputs.items()])
    payload: dict[str, Any] = {"inputs": described}
    if outputs is not None:
        payload["outputs"] = [{"name": n} for n in outputs]
    if request_id is not None:
        payload["id"] = request_id
    return _body(payload, blob)


def decode_response(body: bytes, header_length: int | None = None) -> dict[str, np.ndarray]:
    """Client side: response body -> output arrays by name."""
    header, binary = (
        (body, b"") if header_length is None else (body[:header_length], body[header_length:])
    )
    payload = orjson.loads(header)
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for spec in payload["outputs"]:
        dtype, shape = DATATYPES[spec["datatype"]], tuple(spec["shape"])
        size = (spec.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            arrays[spec["name"]] = np.frombuffer(
                binary, dtype=dtype, count=math.prod(shape), offset=offset
            ).reshape(shape)
            offset += size
        else:
            arrays[spec["name"]] = np.asarray(spec["data"], dtype=dtype).reshape(shape)
    return arrays
