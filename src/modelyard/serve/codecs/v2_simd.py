"""A faster parse of v2 JSON bodies with pysimdjson, for the common case only.

orjson makes a Python float for each of an image's 784 values and ``np.asarray``
turns them back into C doubles: ~35 of the event loop's ~135 µs per request. simdjson
copies a JSON array of numbers straight into a buffer of doubles instead.

:func:`parse` returns the payload exactly as ``orjson.loads`` would, except that each
``data`` of a float tensor (FP16, FP32, FP64) is already a float64 ndarray, or None
whenever the body is outside what this path is known to read identically; the
caller then takes the orjson path, which also words every error. The differences
between the two parsers (found by ``tests/serve/test_codecs_v2_simd.py``) and how
each is handled:

- a UTF-8 byte order mark: simdjson skips it, orjson refuses the body -> None;
- a repeated key: ``Object[key]`` gives the first, orjson the last -> None where a
  key is read that way (the top level and each input), ``as_dict`` keeps the last;
- ``as_buffer`` flattens any nesting (``[1, [2]]`` reads as two numbers where the
  codec refuses it) -> only ``data`` whose arrays either hold only arrays or only
  numbers, checked level by level and by counting ``[`` in the body against the
  arrays parsed;
- integers: orjson keeps them exact, simdjson converts them to doubles -> None when
  any value's magnitude reaches 2**53 (below it both give the same float; in the
  buffer an int no longer looks different from a float);
- integers past 64 bits, which orjson reads as floats: simdjson fails -> None.

Everything else (numbers out of range, NaN, control characters, bad UTF-8, lone
surrogates, depth past 1024, trailing content) both parsers refuse.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

try:
    import simdjson
except ImportError:  # pysimdjson is optional: without it every body takes the orjson path
    simdjson = None  # type: ignore[assignment]

FLOAT_DATATYPES = frozenset({"FP16", "FP32", "FP64"})
_EXACT = 2.0**53  # doubles hold every integer below this, so ints convert the same
_BOM = b"\xef\xbb\xbf"
# A parser keeps the buffers of the largest body it read (~3x its size), so a body
# past this gets a parser of its own that goes with it; this thread's stays small.
_KEEP_BYTES = 1 << 20
_local = threading.local()


class _Decline(Exception):
    """This body takes the orjson path."""


def available() -> bool:
    return simdjson is not None


def _parser(size: int) -> Any:
    if size > _KEEP_BYTES:
        return simdjson.Parser()
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


def _plain(value: Any) -> Any:
    """A parsed value as orjson gives it (proxies converted; their dicts keep the last key)."""
    kind = type(value)
    if kind is simdjson.Object:
        return value.as_dict()
    if kind is simdjson.Array:
        return value.as_list()
    return value


def _keys(obj: Any) -> list[str]:
    keys = list(obj)
    if len(set(keys)) != len(keys):
        raise _Decline
    return keys


def _nested_arrays(array: Any) -> int:
    """How many arrays ``array`` holds below it, where every array with an array first
    holds only arrays (the codec's flattening then reads the numbers in as_buffer's
    order); anything else declines. Arrays nested in the innermost ones are not seen
    here: the caller's count of ``[`` in the body finds them."""
    count, level = 0, [array]
    while len(level[0]) and type(level[0][0]) is simdjson.Array:
        inner = [item for outer in level for item in outer]
        if any(type(item) is not simdjson.Array for item in inner):
            raise _Decline
        count += len(inner)
        level = inner
    return count


def _floats(array: Any, nested: list[int]) -> np.ndarray:
    """A float tensor's data as float64; ``nested`` gets the arrays found inside it."""
    values = np.frombuffer(array.as_buffer(of_type="d"), dtype=np.float64)
    nested.append(_nested_arrays(array))
    if values.size and not np.abs(values).max() < _EXACT:
        raise _Decline
    return values


def _input(spec: Any, nested: list[int]) -> Any:
    if type(spec) is not simdjson.Object:
        return _plain(spec)
    converted = {key: None if key == "data" else _plain(spec[key]) for key in _keys(spec)}
    if "data" in converted:
        data = spec["data"]
        if converted.get("datatype") in FLOAT_DATATYPES and type(data) is simdjson.Array:
            converted["data"] = _floats(data, nested)
        else:
            converted["data"] = _plain(data)
    return converted


def _payload(document: Any, nested: list[int]) -> Any:
    if type(document) is not simdjson.Object:
        return _plain(document)
    payload: dict[str, Any] = {}
    for key in _keys(document):
        value = document[key]
        if key == "inputs" and type(value) is simdjson.Array:
            payload[key] = [_input(spec, nested) for spec in value]
        else:
            payload[key] = _plain(value)
    return payload


def _arrays(payload: Any) -> int:
    """How many JSON arrays ``payload`` came from, counting a float ndarray as one."""
    count, pending = 0, [payload]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is list:
            count += 1
            pending.extend(item)
        elif kind is dict:
            pending.extend(item.values())
        elif kind is np.ndarray:
            count += 1
    return count


def _brackets_at_most(body: bytes, limit: int) -> bool:
    """Whether ``body`` holds at most ``limit`` ``[`` bytes (memchr per hit: ~0.5 µs)."""
    count, at = 0, body.find(b"[")
    while at >= 0:
        count += 1
        if count > limit:
            return False
        at = body.find(b"[", at + 1)
    return True


def parse(body: bytes) -> Any | None:
    """``orjson.loads(body)`` with float tensors' data as float64 arrays, or None (see above)."""
    if simdjson is None or body.startswith(_BOM):
        return None
    nested: list[int] = []
    try:
        document = _parser(len(body)).parse(body)
        try:
            payload = _payload(document, nested)
        finally:
            del document  # the parser refuses a new body while proxies live
    except Exception:  # any doubt: the orjson path reads the body and words the error
        _local.parser = None  # in case a proxy still holds it: a fresh one for the next body
        return None
    # Every '[' in the body must be an array parsed: a '[' inside a string, or an
    # array in a float tensor's data that _nested_arrays did not see, adds one.
    if not _brackets_at_most(body, _arrays(payload) + sum(nested)):
        return None
    return payload
