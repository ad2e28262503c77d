"""Hostile bodies into the text decoders (/v1 texts, v2 BYTES): ClientError (a 4xx)
or texts the model can encode; anything else would be a 500 from the server."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.serve.test_codecs_hostile import FUZZ, _dumps, _refuses_cleanly, json_values

from modelyard.features.text import TextSpec, encode_texts
from modelyard.serve.codecs import text as text_codec
from modelyard.serve.codecs import v2

SPEC = TextSpec()
MAX_TEXTS = 16
texts = st.one_of(st.text(max_size=300), json_values)
v1_text_payloads = st.one_of(
    json_values,
    st.fixed_dictionaries({"text": texts}),
    st.fixed_dictionaries({"texts": st.one_of(st.lists(texts, max_size=20), json_values)}),
    st.fixed_dictionaries({}, optional={"text": texts, "texts": json_values}),
)


def _encodes(decoded: list[str]) -> None:
    """Texts a decoder accepted must go through the model's encoding."""
    assert all(isinstance(t, str) for t in decoded)
    encoded = encode_texts(decoded, SPEC)
    assert encoded.ids.shape[0] == len(decoded)


@FUZZ
@given(v1_text_payloads)
def test_v1_text_decoder_refuses_anything_malformed(payload: Any) -> None:
    decoded = _refuses_cleanly(lambda: text_codec.decode_text_request(_dumps(payload), MAX_TEXTS))
    if decoded is not None:
        _encodes(decoded)  # type: ignore[arg-type]


@FUZZ
@given(st.binary(max_size=1024))
def test_v1_text_decoder_refuses_random_bytes(body: bytes) -> None:
    decoded = _refuses_cleanly(lambda: text_codec.decode_text_request(body, MAX_TEXTS))
    if decoded is not None:
        _encodes(decoded)  # type: ignore[arg-type]


bytes_tensors = st.fixed_dictionaries(
    {"name": st.just("input"), "datatype": st.just("BYTES")},
    optional={
        "shape": st.one_of(st.lists(st.integers(-1, 6), max_size=3), json_values),
        "data": st.one_of(st.lists(texts, max_size=8), json_values),
        "parameters": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"binary_data_size": st.one_of(st.integers(-5, 80), json_values)}
            ),
        ),
    },
)


def _decode_bytes(body: bytes, header: int | None) -> list[str]:
    """What the server does with a v2 request to a text model."""
    request = v2.decode_request(body, header)
    tensor = next(iter(request.inputs.values()))
    return text_codec.texts_from_tensor(list(tensor.reshape(-1)), "input", MAX_TEXTS)


@FUZZ
@given(bytes_tensors, st.one_of(st.none(), st.binary(max_size=80)))
def test_v2_bytes_decoder_refuses_anything_malformed(tensor: Any, binary: bytes | None) -> None:
    body = _dumps({"inputs": [tensor]})
    header = None
    if binary is not None:
        header = len(body)
        body += binary
    decoded = _refuses_cleanly(lambda: _decode_bytes(body, header))
    if decoded is not None:
        _encodes(decoded)  # type: ignore[arg-type]


@FUZZ
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6))
def test_binary_bytes_with_invalid_utf8_are_4xx(elements: list[bytes]) -> None:
    blob = b"".join(len(e).to_bytes(4, "little") + e for e in elements)
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "BYTES",
                    "shape": [len(elements)],
                    "parameters": {"binary_data_size": len(blob)},
                }
            ]
        }
    )
    decoded = _refuses_cleanly(lambda: _decode_bytes(head + blob, len(head)))
    if decoded is not None:
        _encodes(decoded)  # type: ignore[arg-type]


@pytest.mark.parametrize("datatype", ["BYTES", "FP32"])
@pytest.mark.parametrize("shape", [[False], [True], [1, True]])
def test_booleans_are_not_dimensions(datatype: str, shape: list[Any]) -> None:
    """JSON true/false are ints to Python; as a shape they once reached numpy (a 500)."""
    body = orjson.dumps(
        {"inputs": [{"name": "input", "datatype": datatype, "shape": shape, "data": []}]}
    )
    assert _refuses_cleanly(lambda: v2.decode_request(body)) is None
