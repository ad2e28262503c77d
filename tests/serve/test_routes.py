"""The HTTP surface: v2 protocol, /v1 predict, metrics, and 4xx for every bad request."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from modelyard import bundle
from modelyard.features.image import to_model_input
from modelyard.predictor import Predictor
from modelyard.serve.codecs import v2

pytestmark = pytest.mark.slow
INFER = "/v2/models/digits-cnn/infer"
PREDICT = "/v1/models/digits-cnn:predict"


def _offline(images: np.ndarray) -> np.ndarray:
    return Predictor(bundle.load("digits-cnn@candidate")).predict_images(images).probabilities


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0]).save(buffer, format="PNG")
    return buffer.getvalue()


def test_health_and_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2/models/digits-cnn").json()
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    assert [o["name"] for o in meta["outputs"]] == ["logits", "probabilities", "embedding"]
    assert client.get("/v2/models/digits-cnn/ready").json()["ready"] is True
    version = meta["versions"][0]
    assert client.get(f"/v2/models/digits-cnn/versions/{version}").status_code == 200
    assert client.get("/openapi.json").json()["openapi"].startswith("3.")
    assert "/v2/models/{name}/infer" in client.get("/docs").text


@pytest.mark.parametrize("binary", [False, True])
def test_v2_infer_matches_the_offline_bundle(
    client: TestClient, digits_test_images: np.ndarray, binary: bool
) -> None:
    spec = bundle.load("digits-cnn@candidate").preprocessing
    body, headers = v2.encode_request(
        {"input": to_model_input(digits_test_images, spec)}, binary=binary, request_id="r1"
    )
    response = client.post(INFER, content=body, headers=headers)
    assert response.status_code == 200, response.text
    length = response.headers.get("inference-header-content-length")
    outputs = v2.decode_response(response.content, int(length) if length else None)
    assert np.allclose(outputs["probabilities"], _offline(digits_test_images), atol=1e-6)
    assert outputs["embedding"].shape == (16, 64)


def test_v2_accepts_raw_uint8_pixels(client: TestClient, digits_test_images: np.ndarray) -> None:
    body, headers = v2.encode_request({"images": digits_test_images}, outputs=["probabilities"])
    response = client.post(INFER, content=body, headers=headers)
    assert response.status_code == 200, response.text
    outputs = v2.decode_response(response.content)
    assert list(outputs) == ["probabilities"]
    assert np.allclose(outputs["probabilities"], _offline(digits_test_images), atol=1e-6)


def test_v1_predict_multipart_instances_and_b64(
    client: TestClient, digits_test_images: np.ndarray
) -> None:
    expected = _offline(digits_test_images[:3])
    files = [
        ("file", (f"{i}.png", _png(img), "image/png"))
        for i, img in enumerate(digits_test_images[:3])
    ]
    uploaded = client.post(PREDICT, files=files)
    assert uploaded.status_code == 200, uploaded.text
    result = uploaded.json()
    assert result["model_name"] == "digits-cnn" and result["request_id"]
    for row, prediction in zip(expected, result["predictions"], strict=True):
        assert prediction["label"] == str(int(row.argmax()))
        assert prediction["probabilities"]["3"] == pytest.approx(float(row[3]), abs=1e-6)
    as_json = client.post(
        PREDICT, json={"instances": digits_test_images[:3, ..., 0].tolist()}
    ).json()
    assert [p["label"] for p in as_json["predictions"]] == [
        p["label"] for p in result["predictions"]
    ]
    b64 = {"instances": [{"b64": base64.b64encode(_png(digits_test_images[0])).decode()}]}
    assert (
        client.post(PREDICT, json=b64).json()["predictions"][0]["label"]
        == result["predictions"][0]["label"]
    )


def test_big_photo_upload_is_resized(client: TestClient) -> None:
    photo = np.random.default_rng(0).integers(0, 255, (600, 400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG")
    response = client.post(PREDICT, files={"file": ("p.jpg", buffer.getvalue(), "image/jpeg")})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1


_SHORT_BINARY = (
    b'{"inputs":[{"name":"input","shape":[1,1,8,8],"datatype":"FP32",'
    b'"parameters":{"binary_data_size":256}}]}'
)
BAD_REQUESTS = [
    ("post", INFER, {"content": b"{not json"}, 400, "not valid JSON"),
    ("post", INFER, {"json": {"inputs": []}}, 400, "non-empty 'inputs'"),
    (
        "post",
        INFER,
        {
            "json": {
                "inputs": [
                    {"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [1.0]}
                ]
            }
        },
        400,
        "needs 64 values",
    ),
    (
        "post",
        INFER,
        {
            "json": {
                "inputs": [
                    {"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}
                ]
            }
        },
        400,
        "expected [-1, 1, 8, 8]",
    ),
    (
        "post",
        INFER,
        {"json": {"inputs": [{"name": "input", "shape": [1], "datatype": "COMPLEX", "data": [1]}]}},
        400,
        "datatype must be one of",
    ),
    (
        "post",
        INFER,
        {
            "json": {
                "inputs": [
                    {"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP64", "data": [0.0] * 64}
                ]
            }
        },
        400,
        "must be FP32",
    ),
    (
        "post",
        INFER,
        {
            "json": {
                "inputs": [
                    {"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": ["x"] * 64}
                ]
            }
        },
        400,
        "numbers only",
    ),
    (
        "post",
        INFER,
        {
            "content": b'{"inputs":[{"name":"input","shape":[1,1,8,8],"datatype":"FP32","data":['
            + b",".join([b"NaN"] * 64)
            + b"]}]}"
        },
        400,
        "",
    ),
    (  # a finite number past FP32's range reads as Inf: the answer says so
        "post",
        INFER,
        {
            "json": {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 1, 8, 8],
                        "datatype": "FP32",
                        "data": [1e39] * 64,
                    }
                ]
            }
        },
        400,
        "too large for its datatype",
    ),
    (
        "post",
        INFER,
        {
            "json": {
                "inputs": [
                    {"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0.0] * 64}
                ],
                "outputs": [{"name": "nope"}],
            }
        },
        400,
        "unknown output",
    ),
    (
        "post",
        INFER,
        {
            "json": {
                "inputs": [
                    {"name": "x", "shape": [300, 8, 8], "datatype": "UINT8", "data": [0] * 19200}
                ]
            }
        },
        413,
        "exceed the limit of 256",
    ),
    (
        "post",
        INFER,
        {
            "json": {
                "inputs": [
                    {"name": "x", "shape": [1, 8, 8], "datatype": "UINT8", "data": [300] * 64}
                ]
            }
        },
        400,
        "out of range",
    ),
    (
        "post",
        INFER,
        {"content": b"{}", "headers": {"inference-header-content-length": "abc"}},
        400,
        "must be an integer",
    ),
    (
        "post",
        INFER,
        {
            "content": _SHORT_BINARY,
            "headers": {"inference-header-content-length": str(len(_SHORT_BINARY))},
        },
        400,
        "fewer binary bytes",
    ),
    ("post", "/v2/models/other/infer", {"json": {"inputs": []}}, 404, "not served here"),
    (
        "post",
        "/v2/models/digits-cnn/versions/999/infer",
        {"json": {"inputs": []}},
        404,
        "version 999",
    ),
    ("get", "/v2/models/nope", {}, 404, "not served here"),
    ("get", "/nowhere", {}, 404, "no route"),
    ("get", INFER, {}, 405, "not allowed"),
    (
        "post",
        PREDICT,
        {"content": b"[1,2]", "headers": {"content-type": "application/json"}},
        400,
        'send {"instances"',
    ),
    ("post", PREDICT, {"json": {"instances": []}}, 400, "non-empty list"),
    ("post", PREDICT, {"json": {"instances": [[1, 2, 3]]}}, 400, "expected [8, 8, 1]"),
    ("post", PREDICT, {"json": {"instances": [[[999] * 8] * 8]}}, 400, "0..255"),
    ("post", PREDICT, {"json": {"instances": [{"b64": "!!!"}]}}, 400, "not valid base64"),
    (
        "post",
        PREDICT,
        {"json": {"instances": [{"b64": base64.b64encode(b"not an image").decode()}]}},
        400,
        "not a readable image",
    ),
    (
        "post",
        PREDICT,
        {"files": {"file": ("x.png", b"\x89PNG\r\n\x1a\ntruncated", "image/png")}},
        400,
        "not a readable image",
    ),
    (
        "post",
        PREDICT,
        {"content": b"abc", "headers": {"content-type": "text/plain"}},
        415,
        "not supported",
    ),
    (
        "post",
        PREDICT,
        {
            "content": b"--x\r\nbroken",
            "headers": {"content-type": "multipart/form-data; boundary=x"},
        },
        400,
        "",
    ),
    ("post", PREDICT, {"json": {"instances": [[[0] * 8] * 8] * 300}}, 413, "exceed the limit"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_4xx_with_a_reason(
    client: TestClient, method: str, path: str, kwargs: dict, status: int, message: str
) -> None:  # type: ignore[type-arg]
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert client.get("/v2/health/ready").status_code == 200  # still serving


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"files": {"file": ("notes.txt", b"hello, not an image", "text/plain")}}, "upload 'file'"),
        (
            {"files": {"photo": ("x.png", b"\x89PNG\r\n\x1a\ntruncated", "image/png")}},
            "upload 'photo'",
        ),
        ({"files": {"file": ("a.gif", b"GIF89a-but-not-really", "image/gif")}}, "upload 'file'"),
        (
            {"json": {"instances": [{"b64": base64.b64encode(b"not an image").decode()}]}},
            "instances[0].b64",
        ),
    ],
)
def test_a_non_image_is_named_in_words_not_python_reprs(
    client: TestClient, kwargs: dict[str, Any], named: str
) -> None:
    # Pillow's own message names the file object: "<_io.BytesIO object at 0x7f...>".
    response = client.post(PREDICT, **kwargs)
    assert response.status_code == 400, response.text
    assert "object at 0x" not in response.text and "BytesIO" not in response.text
    message = response.json()["error"]
    assert message.startswith(named), message
    assert "is not a readable image" in message and "send a" in message
    assert "PNG or JPEG" in message
    for upload in kwargs.get("files", {}).values():
        if upload[0]:
            assert f"({upload[0]!r})" in message  # the file name, so a batch says which


def test_body_size_limit(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client("max_body_bytes=1000")
    response = client.post(INFER, content=b"x" * 5000, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over the limit of 1000" in response.json()["error"]

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 500

    streamed = client.post(INFER, content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_api_key(
    make_client, monkeypatch: pytest.MonkeyPatch, digits_test_images: np.ndarray
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MODELYARD_API_KEY", "s3cret")
    client = make_client()
    payload = {"instances": digits_test_images[:1, ..., 0].tolist()}
    assert client.post(PREDICT, json=payload).status_code == 401
    assert client.post(PREDICT, json=payload, headers={"x-api-key": "wrong"}).status_code == 401
    assert client.post(PREDICT, json=payload, headers={"x-api-key": "s3cret"}).status_code == 200
    assert (
        client.post(PREDICT, json=payload, headers={"authorization": "Bearer s3cret"}).status_code
        == 200
    )
    assert client.get("/v2/health/live").status_code == 200  # probes need no key
    assert "s3cret" not in client.get("/metrics").text


def test_metrics_count_requests_batches_and_classes(
    client: TestClient, digits_test_images: np.ndarray
) -> None:
    client.post(PREDICT, json={"instances": digits_test_images[:4, ..., 0].tolist()})
    client.post(PREDICT, json={"instances": []})
    text = client.get("/metrics").text
    assert 'modelyard_requests_total{route="/v1/models/{name}:predict",status="200"} 1.0' in text
    assert 'modelyard_requests_total{route="/v1/models/{name}:predict",status="400"} 1.0' in text
    assert "modelyard_batch_size_bucket" in text and "modelyard_queue_seconds_bucket" in text
    # A lone request on an idle server computes on the event loop, and says so.
    assert 'modelyard_batch_trigger_total{model="digits-cnn",trigger="inline"} 1.0' in text
    assert "modelyard_inference_seconds_count" in text and "modelyard_requests_in_flight" in text
    assert 'modelyard_model_info{model="digits-cnn",version=' in text
    predicted = [
        line for line in text.splitlines() if line.startswith("modelyard_predictions_total{")
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in predicted) == 4.0
    assert 'modelyard_prediction_confidence_count{model="digits-cnn"} 4.0' in text
    assert 'modelyard_prediction_confidence_bucket{le="0.2",model="digits-cnn"} 0.0' in text
