"""Serving a text bundle: /v1 JSON texts, v2 BYTES (JSON and binary), errors, and
served == offline predictions, in process and through the real server."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient
from tests.helpers import Server
from tests.text_fixtures import SENTENCES

from modelyard import bundle
from modelyard.data.conllu import read_conllu_sentences
from modelyard.predictor import Predictor
from modelyard.serve.app import create_app
from modelyard.serve.codecs import v2
from modelyard.serve.codecs.text import encode_bytes_binary
from modelyard.serve.settings import settings_from

MODEL = "langid-nordic-fasttext"
URI = f"{MODEL}@candidate"
PREDICT = f"/v1/models/{MODEL}:predict"
TEXTS = [SENTENCES[label][i] for label in SENTENCES for i in (0, 5)]


@pytest.fixture
def text_client(trained_text, use_session_home) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = settings_from(["max_instances=16"], model=URI, poll_interval_s=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _offline(texts: list[str]) -> np.ndarray:
    return Predictor(bundle.load(URI)).predict_texts(texts).probabilities


def _objects(texts: list[str]) -> np.ndarray:
    array = np.empty(len(texts), dtype=object)
    array[:] = texts
    return array


def test_v1_fast_path_answers_like_the_starlette_route(text_client: TestClient) -> None:
    routed = TestClient(text_client.app, root_path="/api", raise_server_exceptions=False)
    for payload in ({"texts": TEXTS}, {"text": "  "}, {"texts": "no list"}):
        headers = {"x-request-id": "same"}
        fast = text_client.post(PREDICT, json=payload, headers=headers)
        slow = routed.post(f"/api{PREDICT}", json=payload, headers=headers)
        assert fast.status_code == slow.status_code
        assert fast.content == slow.content
        assert fast.headers.items() == slow.headers.items()


def test_v1_predict_equals_offline(text_client: TestClient) -> None:
    response = text_client.post(PREDICT, json={"texts": TEXTS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == MODEL and body["model_version"] and body["request_id"]
    served = np.array(
        [[p["probabilities"][k] for k in bundle.load(URI).labels] for p in body["predictions"]]
    )
    np.testing.assert_allclose(served, _offline(TEXTS), atol=1e-6)
    assert all(p["truncated"] is False for p in body["predictions"])
    single = text_client.post(PREDICT, json={"text": TEXTS[3]}, headers={"x-request-id": "r-1"})
    assert single.json()["request_id"] == "r-1"
    assert single.json()["predictions"][0]["label"] == body["predictions"][3]["label"]


def test_over_long_text_is_cut_and_says_so(text_client: TestClient) -> None:
    max_chars = bundle.load(URI).preprocessing.max_chars  # type: ignore[union-attr]
    long_text = "hejsan" * max_chars
    body = text_client.post(PREDICT, json={"texts": [long_text, TEXTS[0]]}).json()
    assert body["max_chars"] == max_chars
    assert [p["truncated"] for p in body["predictions"]] == [True, False]
    # The model saw exactly the first max_chars characters.
    cut = text_client.post(PREDICT, json={"text": long_text[:max_chars]}).json()
    assert cut["predictions"][0]["truncated"] is False
    assert cut["predictions"][0]["probabilities"] == pytest.approx(
        body["predictions"][0]["probabilities"], abs=1e-6
    )


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"text": ""}, 400, "empty or only whitespace"),
        ({"text": " \t\n "}, 400, "empty or only whitespace"),
        ({"texts": ["ok", "   "]}, 400, "texts[1] is empty"),
        ({"texts": []}, 400, "holds no texts"),
        ({"text": 42}, 400, "must be a string"),
        ({"texts": "one string"}, 400, "must be a list"),
        ({"texts": ["a", 1]}, 400, "texts[1] must be a string"),
        ({"text": "a", "texts": ["b"]}, 400, "either"),
        ({"texts": ["x"] * 17}, 413, "exceed the limit of 16"),
    ],
)
def test_bad_text_requests_are_4xx(
    text_client: TestClient, payload: dict[str, object], status: int, message: str
) -> None:
    response = text_client.post(PREDICT, json=payload)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_not_utf8_or_not_json_is_400(text_client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    response = text_client.post(PREDICT, content=b'{"text": "bl\xe5b\xe6r"}', headers=headers)
    assert response.status_code == 400 and "UTF-8" in response.json()["error"]
    assert text_client.post(PREDICT, content=b"{nope", headers=headers).status_code == 400
    upload = text_client.post(PREDICT, files={"file": ("a.txt", b"hej")})
    assert upload.status_code == 415


def test_v2_bytes_json_and_binary_equal_offline(text_client: TestClient) -> None:
    metadata = text_client.get(f"/v2/models/{MODEL}").json()
    assert metadata["inputs"] == [{"name": "input", "datatype": "BYTES", "shape": [-1]}]
    assert metadata["parameters"]["kind"] == "text"
    offline = _offline(TEXTS)
    for binary in (False, True):
        body, headers = v2.encode_request({"input": _objects(TEXTS)}, binary=binary)
        response = text_client.post(f"/v2/models/{MODEL}/infer", content=body, headers=headers)
        assert response.status_code == 200, response.text
        outputs = v2.decode_response(response.content)
        np.testing.assert_allclose(outputs["probabilities"], offline, atol=1e-6)


def test_v2_text_errors(text_client: TestClient) -> None:
    url = f"/v2/models/{MODEL}/infer"
    floats = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
    assert "must be BYTES" in text_client.post(url, json=floats).json()["error"]
    blank = {"inputs": [{"name": "input", "datatype": "BYTES", "shape": [2], "data": ["a", " "]}]}
    assert "is empty" in text_client.post(url, json=blank).json()["error"]
    short = {"inputs": [{"name": "input", "datatype": "BYTES", "shape": [3], "data": ["a"]}]}
    assert text_client.post(url, json=short).status_code == 400
    # Binary BYTES whose second element is Latin-1, not UTF-8.
    blob = encode_bytes_binary(["hej"]) + len(b"bl\xe5").to_bytes(4, "little") + b"bl\xe5"
    header = (
        b'{"inputs":[{"name":"input","datatype":"BYTES","shape":[2],'
        b'"parameters":{"binary_data_size":%d}}]}' % len(blob)
    )
    response = text_client.post(
        url, content=header + blob, headers={"inference-header-content-length": str(len(header))}
    )
    assert response.status_code == 400 and "element 1 is not valid UTF-8" in response.text


def test_image_models_still_refuse_bytes(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    bytes_input = {"inputs": [{"name": "input", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}
    response = client.post("/v2/models/digits-cnn/infer", json=bytes_input)
    assert response.status_code == 400


@pytest.mark.slow
def test_real_server_equals_offline_on_real_sentences(
    trained_text,
    use_session_home,
    ud_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Real UD sentences (not the training fixture), through the real server process,
    one request per sentence and one batch, against Predictor offline."""
    import tritonclient.http as triton

    rng = random.Random(0)
    texts = []
    for name in ("da_ddt-ud-dev.conllu", "no_nynorsk-ud-dev.conllu", "sv_talbanken-ud-dev.conllu"):
        texts += rng.sample(read_conllu_sentences(ud_dir / name), 10)
    offline = _offline(texts)
    server = Server(URI, "poll_interval_s=0")
    try:
        labels = bundle.load(URI).labels
        with httpx.Client(timeout=10) as client:
            for text, expected in zip(texts, offline, strict=True):
                body = client.post(f"{server.url}{PREDICT}", json={"text": text}).json()
                got = [body["predictions"][0]["probabilities"][k] for k in labels]
                np.testing.assert_allclose(got, expected, atol=1e-6)
        triton_client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        assert triton_client.get_model_metadata(MODEL)["inputs"][0]["datatype"] == "BYTES"
        for binary in (True, False):
            tensor = triton.InferInput("input", [len(texts)], "BYTES")
            tensor.set_data_from_numpy(_objects(texts), binary_data=binary)
            wanted = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
            result = triton_client.infer(MODEL, inputs=[tensor], outputs=wanted)
            np.testing.assert_allclose(result.as_numpy("probabilities"), offline, atol=1e-6)
    finally:
        assert server.stop() == 0


def test_text_predictions_are_logged_with_text_summaries(
    trained_text, use_session_home, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from modelyard.monitor.drift import WindowData, run_checks
    from modelyard.monitor.logstore import create_log_engine, read_window
    from modelyard.monitor.summaries import text_summaries

    url = f"sqlite:///{tmp_path / 'log.db'}"
    settings = settings_from(
        [f"prediction_log_url={url}", "log_flush_interval_s=0.05"], model=URI, poll_interval_s=0
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        answer = client.post(PREDICT, json={"texts": TEXTS[:3]}, headers={"x-request-id": "t1"})
        body, headers = v2.encode_request({"input": _objects(TEXTS[3:5])}, request_id="t2")
        assert answer.status_code == 200
        assert client.post(f"/v2/models/{MODEL}/infer", content=body, headers=headers).is_success
        more = client.post(PREDICT, json={"texts": TEXTS * 4}, headers={"x-request-id": "t3"})
        assert more.status_code == 200
    # Leaving the client stopped the server, which flushed the log.
    engine = create_log_engine(url)
    try:
        window = read_window(engine, MODEL)
    finally:
        engine.dispose()
    assert window.request_ids == ["t1"] * 3 + ["t2"] * 2 + ["t3"] * 4 * len(TEXTS)
    assert window.labels[:3] == [p["label"] for p in answer.json()["predictions"]]
    expected = text_summaries(TEXTS[:5])
    for name, values in expected.items():
        assert np.allclose(window.summaries[name][:5], values), name
    # The logged summaries are the ones the bundle's reference profile holds, so the
    # drift checks can compare them.
    profile = bundle.load(URI).reference_profile
    assert set(profile["features"]) == set(window.summaries)
    checks = run_checks(
        profile,
        WindowData(window.summaries, window.projection, window.labels, window.confidences),
    )
    assert {check.name for check in checks} >= set(expected)
