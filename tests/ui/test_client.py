"""The UI's HTTP client against a real server, and every failure as a clear message."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from tests.conftest import FAST
from tests.helpers import Server, free_port
from tests.ui.conftest import Routes, text_model_routes

from modelyard.config import compose_config
from modelyard.data import load_dataset
from modelyard.ui.client import ServerClient, ServerError
from modelyard.ui.examples import png_bytes

pytestmark = pytest.mark.slow


def test_real_server_metadata_and_an_uploaded_digit(server: Server) -> None:
    data = load_dataset(compose_config(FAST).data).test
    client = ServerClient(server.url)
    info = client.info()
    assert (info.name, info.kind, info.input_shape) == ("digits-cnn", "image", (1, 8, 8))
    assert info.labels == tuple(str(d) for d in range(10))
    answers = [client.predict_image(png_bytes(image[..., 0])) for image in data.images[:10]]
    client.close()
    assert all(a.model == "digits-cnn" and a.version == info.version for a in answers)
    assert all(abs(sum(a.probabilities.values()) - 1) < 1e-4 for a in answers)
    assert all(a.confidence == max(a.probabilities.values()) for a in answers)
    right = sum(a.label == str(label) for a, label in zip(answers, data.labels[:10], strict=True))
    assert right >= 7  # the trained model, not a constant answer


def test_text_model_is_detected_from_the_reported_kind(stand_in: Callable[[Routes], str]) -> None:
    client = ServerClient(stand_in(text_model_routes("fr")))
    assert client.info().kind == "text"
    answer = client.predict_text("bonjour à tous")
    assert (answer.label, answer.model, answer.version) == ("fr", "langid", "4")


def test_a_server_that_is_down_is_named_with_what_to_do() -> None:
    client = ServerClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ServerError, match=r"cannot reach the model server .*`modelyard serve"):
        client.info()


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"/metrics": (200, b"# nothing loaded\n")}, "serves no model yet"),
        (
            {**text_model_routes(), "/v1/models/langid:predict": (503, {"error": "overloaded"})},
            "answered 503: overloaded",
        ),
        (
            {**text_model_routes(), "/v1/models/langid:predict": (200, {"predictions": []})},
            "unknown shape",
        ),
        ({**text_model_routes(), "/v2/models/langid": (200, {"name": "x"})}, "not the metadata"),
    ],
)
def test_error_answers_become_server_errors(
    stand_in: Callable[[Routes], str], routes: Routes, message: str
) -> None:
    client = ServerClient(stand_in(routes))
    with pytest.raises(ServerError, match=message):
        client.info()
        client.predict_text("hello")


def test_a_real_4xx_message_reaches_the_user(server: Server) -> None:
    with pytest.raises(ServerError) as caught:
        ServerClient(server.url).predict_image(b"not an image")
    message = str(caught.value)
    assert "answered 400: upload 'file' ('image.png') is not a readable image" in message
    assert "send a PNG or JPEG file" in message and "object at 0x" not in message


def test_the_api_key_is_sent_when_the_server_needs_one(
    trained,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELYARD_API_KEY", "s3cret")
    keyed = Server(str(trained.bundle_path), "poll_interval_s=0")
    try:
        with pytest.raises(ServerError, match="answered 401: missing or wrong API key"):
            ServerClient(keyed.url).info()
        client = ServerClient(keyed.url, api_key="s3cret")
        assert client.info().name == "digits-cnn"
        assert client.predict_image(png_bytes(np.zeros((8, 8), dtype=np.uint8))).label
    finally:
        keyed.stop()
