"""The raw-ASGI fast path (v2 infer, JSON /v1 predict) answers exactly like the
Starlette routes."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest
from PIL import Image
from starlette.testclient import TestClient

from modelyard import bundle
from modelyard.features.image import to_model_input
from modelyard.predictor import Predictor
from modelyard.serve.codecs import v2
from modelyard.serve.fastpath import v1_predict_name, v2_infer_name
from modelyard.serve.metrics import ServerMetrics, observe_many

pytestmark = pytest.mark.slow
INFER = "/v2/models/digits-cnn/infer"
PREDICT = "/v1/models/digits-cnn:predict"


def routed_client(client: TestClient) -> TestClient:
    """The same app behind a root path, which the fast path leaves to Starlette's router."""
    return TestClient(client.app, root_path="/api", raise_server_exceptions=False)


def _versioned(client: TestClient) -> str:
    """The same route through Starlette's router (the fast path only takes INFER)."""
    version = client.get("/v2/models/digits-cnn").json()["versions"][0]
    return f"/v2/models/digits-cnn/versions/{version}/infer"


@pytest.mark.parametrize("binary", [False, True])
def test_fast_path_and_starlette_route_send_the_same_bytes(
    client: TestClient, digits_test_images: np.ndarray, binary: bool
) -> None:
    loaded = bundle.load("digits-cnn@candidate")
    inputs = to_model_input(digits_test_images[:5], loaded.preprocessing)
    body, headers = v2.encode_request({"input": inputs}, binary=binary, request_id="same")
    fast = client.post(INFER, content=body, headers=headers)
    routed = client.post(_versioned(client), content=body, headers=headers)
    assert fast.status_code == routed.status_code == 200, fast.text
    assert fast.content == routed.content
    assert fast.headers.items() == routed.headers.items()
    length = fast.headers.get("inference-header-content-length")
    outputs = v2.decode_response(fast.content, int(length) if length else None)
    expected = Predictor(loaded).predict_images(digits_test_images[:5]).probabilities
    assert outputs["probabilities"].dtype == np.float32
    assert np.allclose(outputs["probabilities"], expected, atol=1e-6)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (INFER, b"{not json", 400),
        (
            INFER,
            b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1], "data": ["x"]}]}',
            400,
        ),
        ("/v2/models/nope/infer", b'{"inputs": []}', 404),
    ],
)
def test_fast_path_errors_are_4xx_json_and_counted(
    client: TestClient, path: str, body: bytes, status: int
) -> None:
    response = client.post(path, content=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["error"], str)
    metrics = client.get("/metrics").text
    label = f'modelyard_requests_total{{route="/v2/models/{{name}}/infer",status="{status}"}} 1.0'
    assert label in metrics


def test_fast_path_keeps_api_key_and_body_limit(
    make_client, digits_test_images, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MODELYARD_API_KEY", "s3cret")
    client = make_client("max_body_bytes=2000")
    spec = bundle.load("digits-cnn@candidate").preprocessing
    body, headers = v2.encode_request({"input": to_model_input(digits_test_images[:1], spec)})
    assert client.post(INFER, content=body, headers=headers).status_code == 401
    headers["authorization"] = "Bearer s3cret"
    assert client.post(INFER, content=body, headers=headers).status_code == 200
    big, big_headers = v2.encode_request({"input": to_model_input(digits_test_images, spec)})
    big_headers["authorization"] = "Bearer s3cret"
    assert client.post(INFER, content=big, headers=big_headers).status_code == 413


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"instances": [[[0, 255, 3, 9, 0, 0, 0, 1]]]}', {"content-type": "application/json"}),
        (b'{"instances": [[[1, 2]]]}', {}),  # wrong shape: the same 400
        (b"not json", {"content-type": "application/json"}),
        (b"<x/>", {"content-type": "application/xml"}),  # the same 415
    ],
)
def test_v1_fast_path_and_starlette_route_send_the_same_bytes(
    client: TestClient, body: bytes, headers: dict[str, str]
) -> None:
    headers = {**headers, "x-request-id": "same"}
    images = np.zeros((2, 8, 8), dtype=np.uint8)
    images[1, 2:6, 3] = 255
    if body.startswith(b'{"instances": [[[0'):
        body = orjson.dumps({"instances": images.tolist()})
    fast = client.post(PREDICT, content=body, headers=headers)
    routed = routed_client(client).post(f"/api{PREDICT}", content=body, headers=headers)
    assert fast.status_code == routed.status_code
    assert fast.content == routed.content
    assert fast.headers.items() == routed.headers.items()
    if fast.status_code == 200:
        loaded = bundle.load("digits-cnn@candidate")
        expected = Predictor(loaded).predict_images(images).probabilities
        served = [
            [p["probabilities"][k] for k in loaded.labels] for p in fast.json()["predictions"]
        ]
        assert np.allclose(served, expected, atol=1e-6)
        assert fast.headers["x-request-id"] == "same"


def test_v1_multipart_upload_is_left_to_starlette(client: TestClient) -> None:
    png = io.BytesIO()
    Image.fromarray(np.full((30, 20), 200, dtype=np.uint8)).save(png, format="PNG")
    response = client.post(PREDICT, files={"file": ("digit.png", png.getvalue(), "image/png")})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 1
    metrics = client.get("/metrics").text
    assert 'modelyard_requests_total{route="/v1/models/{name}:predict",status="200"} 1.0' in metrics


def test_only_post_to_the_unversioned_infer_path_takes_the_fast_path() -> None:
    def scope(path: str, method: str = "POST", root: str = "") -> dict:  # type: ignore[type-arg]
        return {"type": "http", "method": method, "path": path, "root_path": root}

    assert v2_infer_name(scope("/v2/models/m-1/infer")) == "m-1"
    assert v2_infer_name(scope("/v2/models/m/infer", method="GET")) is None
    assert v2_infer_name(scope("/v2/models/m/versions/3/infer")) is None
    assert v2_infer_name(scope("/v2/models//infer")) is None
    assert v2_infer_name(scope("/v2/models/m/infer", root="/api")) is None
    assert v1_predict_name(scope("/v1/models/m-1:predict")) == "m-1"
    assert v1_predict_name(scope("/v1/models/a:b:predict")) == "a:b"  # as Starlette's {name}
    assert v1_predict_name(scope("/v1/models/m:predict", method="GET")) is None
    assert v1_predict_name(scope("/v1/models/:predict")) is None
    assert v1_predict_name(scope("/v1/models/x/y:predict")) is None


@pytest.mark.parametrize("count", [1, 4, 9])  # a few values loop, more are counted in bulk
def test_observe_many_matches_observe_per_value(count: int) -> None:
    values = np.array([0.1, 0.2, 0.25, 0.5, 0.99, 1.0, 0.95, 0.3, 0.0])[:count]
    one, bulk = ServerMetrics(), ServerMetrics()
    for value in values:
        one.confidence.labels("m").observe(float(value))
    observe_many(bulk.confidence.labels("m"), values)

    def lines(metrics: ServerMetrics) -> list[str]:
        text = metrics.render().decode()
        return [
            line
            for line in text.splitlines()
            if line.startswith("modelyard_prediction_confidence") and "_created" not in line
        ]

    assert lines(one) == lines(bulk)
    assert len(lines(one)) == 14  # 12 buckets + count + sum
