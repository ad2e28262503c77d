"""The data plane on its own: plain objects in and out, no HTTP anywhere."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import orjson
import pytest

from modelyard import bundle
from modelyard.features.image import to_model_input
from modelyard.predictor import Predictor
from modelyard.serve.codecs import v2
from modelyard.serve.dataplane import DataPlane, new_request_id
from modelyard.serve.errors import ClientError, NotFound, Unavailable
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.monitoring import ServingMonitor
from modelyard.serve.runtime import ModelRuntime
from modelyard.serve.settings import settings_from


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def plane(trained, use_session_home, loop) -> Iterator[DataPlane]:  # type: ignore[no-untyped-def]
    settings = settings_from([], model="digits-cnn@candidate", poll_interval_s=0)
    metrics = ServerMetrics()
    runtime = ModelRuntime(settings, metrics)
    runtime.preload()
    loop.run_until_complete(runtime.start())
    yield DataPlane(runtime, ServingMonitor(settings, metrics), max_rows=4)
    loop.run_until_complete(runtime.close())


def test_the_data_plane_imports_no_http() -> None:
    code = (
        "import sys, modelyard.serve.dataplane; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'starlette', 'uvicorn', 'httpx', 'torch'}))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert found.stdout.strip() == "[]", found.stderr


def test_lookup_names_what_is_served(plane: DataPlane) -> None:
    model = plane.model("digits-cnn")
    assert plane.model("digits-cnn", model.version) is model
    with pytest.raises(NotFound, match="this server serves 'digits-cnn'") as other:
        plane.model("other")
    assert other.value.status == 404
    with pytest.raises(NotFound, match="is not loaded"):
        plane.model("digits-cnn", "999")
    assert plane.model_ready(model) == {"name": "digits-cnn", "ready": True}
    metadata = plane.model_metadata(model)
    assert metadata["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}
    assert metadata["parameters"]["labels"] == list(model.bundle.labels)


def test_infer_and_predict_answer_like_offline_prediction(
    plane: DataPlane, loop: asyncio.AbstractEventLoop, digits_test_images: np.ndarray
) -> None:
    images = digits_test_images[:3]
    loaded = bundle.load("digits-cnn@candidate")
    offline = Predictor(loaded).predict_images(images).probabilities
    model = plane.model("digits-cnn")

    request = v2.InferRequest(inputs={"input": to_model_input(images, loaded.preprocessing)})
    answer = loop.run_until_complete(plane.infer(model, request))
    assert (answer.model_name, answer.model_version) == ("digits-cnn", model.version)
    assert np.allclose(answer.outputs["probabilities"], offline, atol=1e-6)

    body = orjson.dumps({"instances": images[..., 0].tolist()})
    predicted = loop.run_until_complete(plane.predict(model, body, "application/json", "r-1"))
    payload = orjson.loads(predicted.body)
    assert predicted.request_id == payload["request_id"] == "r-1"
    probabilities = [
        [p["probabilities"][label] for label in loaded.labels] for p in payload["predictions"]
    ]
    assert np.allclose(probabilities, offline, atol=1e-6)


def test_client_errors_are_raised_not_rendered(
    plane: DataPlane, loop: asyncio.AbstractEventLoop
) -> None:
    model = plane.model("digits-cnn")
    two = v2.InferRequest(inputs={"a": np.zeros((1, 1, 8, 8), np.float32), "b": np.zeros(1)})
    with pytest.raises(ClientError, match="exactly one input tensor"):
        loop.run_until_complete(plane.infer(model, two))
    rows = v2.InferRequest(inputs={"input": np.zeros((5, 1, 8, 8), np.float32)})
    with pytest.raises(ClientError) as too_many:
        loop.run_until_complete(plane.infer(model, rows))
    assert too_many.value.status == 413
    one = v2.InferRequest(
        inputs={"input": np.zeros((1, 1, 8, 8), np.float32)}, outputs=[("nope", False)]
    )
    with pytest.raises(ClientError, match=r"unknown output\(s\) \['nope'\]"):
        loop.run_until_complete(plane.infer(model, one))
    with pytest.raises(ClientError) as media:
        loop.run_until_complete(plane.predict(model, b"x", "text/plain"))
    assert media.value.status == 415
    # a confidence threshold is a text model's; an image model refuses it, naming it
    threshold = v2.InferRequest(
        inputs={"input": np.zeros((1, 1, 8, 8), np.float32)}, parameters={"min_confidence": 0.5}
    )
    with pytest.raises(ClientError, match=r"parameters\.min_confidence applies to text models"):
        loop.run_until_complete(plane.infer(model, threshold))


def test_an_unloaded_runtime_is_unavailable(trained, use_session_home) -> None:  # type: ignore[no-untyped-def]
    settings = settings_from([], model="digits-cnn@candidate", poll_interval_s=0)
    metrics = ServerMetrics()
    plane = DataPlane(ModelRuntime(settings, metrics), ServingMonitor(settings, metrics), 4)
    assert not plane.ready
    with pytest.raises(Unavailable, match="not loaded yet") as unavailable:
        plane.model("digits-cnn")
    assert unavailable.value.status == 503


def test_new_request_ids_are_unique_and_sort_by_time() -> None:
    """Made-up ids are 32 hex digits, none repeated, and a later one sorts after an
    earlier one (time first: the log's request-id index grows at its end)."""
    first = [new_request_id() for _ in range(1000)]
    time.sleep(0.002)  # the time part counts milliseconds
    later = new_request_id()
    assert len(set(first)) == len(first)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in [*first, later])
    assert later > max(first)
