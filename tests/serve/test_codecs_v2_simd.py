"""The pysimdjson path of the v2 decoder gives what the orjson path gives, errors included.

Every body goes through ``decode_request(fast=True)`` and ``(fast=False)``; the two
outcomes (arrays to the byte, or the 4xx status and message) must be equal. The
bodies: the hostile-body tests' own strategies and hand-written bodies, the routes'
bad v2 requests, what ``modelyard bench`` sends, and the known differences between
the two parsers, which the fast path must decline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.serve import test_codecs_hostile as hostile
from tests.serve.test_routes import BAD_REQUESTS

from modelyard.bench.payloads import tensor_payload
from modelyard.serve.codecs import v2, v2_simd
from modelyard.serve.errors import ClientError

if not v2_simd.available():
    pytest.skip(
        "pysimdjson is not installed: every body takes the orjson path", allow_module_level=True
    )

# The hostile-body test's own list, read from its parametrize mark (one home for it).
HOSTILE = hostile.test_hand_written_hostile_bodies.pytestmark[0].args[1]


def _outcome(body: bytes, header: int | None, fast: bool) -> tuple[Any, ...]:
    try:
        request = v2.decode_request(body, header, fast=fast)
    except ClientError as error:
        return ("refused", error.status, error.message)
    arrays = {
        name: (a.dtype.str, a.shape, a.tolist() if a.dtype == object else a.tobytes())
        for name, a in request.inputs.items()
    }
    return ("ok", arrays, request.id, request.outputs, request.binary_output, request.parameters)


def _same(body: bytes, header: int | None = None) -> tuple[Any, ...]:
    fast = _outcome(body, header, fast=True)
    assert fast == _outcome(body, header, fast=False), body[:200]
    return fast


def _tensor(data: bytes, datatype: bytes = b"FP32", shape: bytes = b"[2]") -> bytes:
    return (
        b'{"inputs": [{"name": "input", "datatype": "'
        + datatype
        + b'", "shape": '
        + shape
        + b', "data": '
        + data
        + b"}]}"
    )


@hostile.FUZZ
@given(hostile.v2_payloads, st.one_of(st.none(), st.integers(-10, 5000)), st.binary(max_size=64))
def test_random_payloads_decode_the_same(payload: Any, header: int | None, tail: bytes) -> None:
    body = hostile._dumps(payload)
    _same(body + tail if header is not None else body, header)


number_text = st.from_regex(
    r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?", fullmatch=True
)


@hostile.FUZZ
@given(
    st.lists(number_text, min_size=1, max_size=20),
    st.sampled_from([b"FP16", b"FP32", b"FP64", b"INT32", b"UINT8"]),
)
def test_number_spellings_decode_the_same(numbers: list[str], datatype: bytes) -> None:
    data = b"[" + ",".join(numbers).encode() + b"]"
    _same(_tensor(data, datatype, b"[%d]" % len(numbers)))


@pytest.mark.parametrize("body", HOSTILE, ids=lambda b: repr(b[:30]))
def test_hostile_bodies_decode_the_same(body: bytes) -> None:
    _same(body)


@pytest.mark.parametrize(
    "kwargs",
    [kwargs for _, path, kwargs, _, _ in BAD_REQUESTS if path.startswith("/v2/")],
)
def test_the_routes_bad_v2_bodies_decode_the_same(kwargs: dict[str, Any]) -> None:
    _same(kwargs["content"] if "content" in kwargs else orjson.dumps(kwargs.get("json")))


@pytest.mark.parametrize("batch", [1, 8, 32])
@pytest.mark.parametrize("nested", [False, True])
def test_what_bench_sends_takes_the_fast_path(batch: int, nested: bool) -> None:
    body = tensor_payload("v2", (1, 28, 28), batch=batch).body
    if nested:
        payload = orjson.loads(body)
        spec = payload["inputs"][0]
        spec["data"] = np.asarray(spec["data"]).reshape(spec["shape"]).tolist()
        body = orjson.dumps(payload)
    assert v2_simd.parse(body) is not None
    outcome = _same(body)
    assert outcome[0] == "ok" and outcome[1]["input"][1] == (batch, 1, 28, 28)


@pytest.mark.parametrize(
    "body",
    [
        _tensor(b"[1, 2]"),  # all ints: orjson's int64, the fast path's doubles
        _tensor(b"[-0, 0.5]"),  # orjson's int 0 is +0.0; so is simdjson's -0
        _tensor(b"[-0.0, -0e0]"),
        _tensor(b"[9007199254740991, 1]"),  # 2**53 - 1: exact either way
        _tensor(b"[[1, 2], [3, 4]]", shape=b"[2, 2]"),
        _tensor(b"[[1], [], [2]]"),  # the codec reads empty inner lists as nothing
        _tensor(b"[1.5, 2.5]", b"FP16"),
        _tensor(b"[1e15, -3.25]"),
        _tensor(b"[1e-320, 2.2250738585072011e-308]", b"FP64"),
        _tensor(b"[]", shape=b"[0]"),
        _tensor(b"[1, 2]", shape=b"[3]"),  # wrong count: the same message
        _tensor(b"[[1, 2], [3]]", shape=b"[2, 2]"),
        _tensor(b"[1, 2]") + b"  \n",
        b' {"id": 7, "parameters": {"a": [1, {"b": [2]}]}, "inputs": [{"name": "x",'
        b' "datatype": "FP32", "shape": [1], "data": [0.25]}], "outputs": [{"name": "y",'
        b' "parameters": {"binary_data": true}}]}',
        b'{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],'
        b' "data": ["a b", "\\u00e9\\n"]}]}',
        b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "data": [1]},'
        b' {"name": "b", "datatype": "INT64", "shape": [1], "data": [9007199254740993]}]}',
    ],
)
def test_bodies_the_fast_path_reads(body: bytes) -> None:
    assert v2_simd.parse(body) is not None
    _same(body)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"\xef\xbb\xbf" + _tensor(b"[1, 2]"), "a byte order mark: orjson refuses it"),
        (_tensor(b"[1, 2]")[:-1] + b', "inputs": []}', "a repeated key: orjson keeps the last"),
        (
            b'{"inputs": [{"name": "input", "data": [5, 6], "datatype": "FP32",'
            b' "shape": [2], "data": [1, 2]}]}',
            "a repeated key inside an input",
        ),
        (_tensor(b"[1, [2]]"), "as_buffer flattens; the codec refuses a list among numbers"),
        (_tensor(b"[[1, 2], 3]", shape=b"[3]"), "a number among lists"),
        (_tensor(b"[[1, [2]], 3, 4]", shape=b"[4]"), "deeper lists in some inner list"),
        (_tensor(b"[9007199254740993, 1]"), "2**53 + 1: orjson keeps the int exact"),
        (_tensor(b"[18446744073709551615, -1]"), "a uint64 beside a negative int"),
        (_tensor(b"[1e39, 0.5]"), "any value from 2**53 on, even a float"),
        (_tensor(b"[18446744073709551616, 1]"), "past 64 bits: orjson reads a float"),
        (
            b'{"inputs": [{"name": "x[0]", "datatype": "FP32", "shape": [1], "data": [1]}]}',
            "a '[' in a string (safe, just not counted)",
        ),
        (_tensor(b"[1, 2"), "malformed: orjson words the error"),
    ],
)
def test_bodies_the_fast_path_declines(body: bytes, why: str) -> None:
    assert v2_simd.parse(body) is None, why
    _same(body)


def test_a_declined_body_leaves_the_parser_usable() -> None:
    good = tensor_payload("v2", (1, 28, 28)).body
    for body in (b"{", _tensor(b"[1, [2]]"), b"[" * 5000, good):
        _same(body)
    assert v2_simd.parse(good) is not None


def test_a_big_body_gets_a_parser_of_its_own() -> None:
    # The thread's parser would keep buffers sized for the biggest body it ever read.
    small = tensor_payload("v2", (1, 28, 28)).body
    assert v2_simd.parse(small) is not None
    kept = v2_simd._local.parser
    big = tensor_payload("v2", (1, 28, 28), batch=100).body
    assert len(big) > v2_simd._KEEP_BYTES
    assert v2_simd.parse(big) is not None
    assert v2_simd._local.parser is kept
    _same(big)
