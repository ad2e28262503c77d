"""The real server process: tritonclient, hot reload under load, graceful SIGTERM."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.conftest import FAST
from tests.helpers import Server

from modelyard import bundle
from modelyard.config import compose_config
from modelyard.data import load_dataset
from modelyard.predictor import Predictor
from modelyard.train.run import train

pytestmark = pytest.mark.slow


@pytest.fixture
def served(trained, use_session_home) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    server = Server("digits-cnn@candidate", "poll_interval_s=0")
    yield server
    server.stop()


def test_tritonclient_talks_to_the_server(served: Server) -> None:
    import tritonclient.http as triton

    images = load_dataset(compose_config(FAST).data).test.images[:5]
    loaded = bundle.load("digits-cnn@candidate")
    offline = Predictor(loaded).predict_images(images).probabilities
    inputs_array = Predictor(loaded).predict_images  # noqa: F841 -- same preprocessing below
    from modelyard.features.image import to_model_input

    x = to_model_input(images, loaded.preprocessing)
    client = triton.InferenceServerClient(url=f"127.0.0.1:{served.port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits-cnn")
    metadata = client.get_model_metadata("digits-cnn")
    assert metadata["inputs"][0]["shape"] == [-1, 1, 8, 8]
    for binary in (True, False):
        tensor = triton.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        wanted = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
        result = client.infer("digits-cnn", inputs=[tensor], outputs=wanted)
        assert np.allclose(result.as_numpy("probabilities"), offline, atol=1e-6)
    with pytest.raises(Exception, match="not served here"):
        client.infer("other-model", inputs=[tensor])


def _load(url: str, stop: threading.Event, results: list[tuple[float, int, str]]) -> None:
    body = {"instances": [[[0] * 8] * 8]}
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = client.post(f"{url}/v1/models/digits-cnn:predict", json=body)
                results.append(
                    (started, response.status_code, response.json().get("model_version", ""))
                )
            except httpx.HTTPError as error:
                results.append((started, 0, repr(error)))


def test_alias_move_under_load_swaps_without_failures(home: Path) -> None:
    first = train(compose_config(FAST))
    server = Server("digits-cnn@candidate", "poll_interval_s=0.3")
    stop, results = threading.Event(), []  # type: ignore[var-annotated]
    workers = [threading.Thread(target=_load, args=(server.url, stop, results)) for _ in range(4)]
    try:
        for worker in workers:
            worker.start()
        second = train(compose_config([*FAST, "train.seed=7"]))  # moves @candidate to v2
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            r[2] == second.model_version for r in results[-20:]
        ):
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        code = server.stop()
    statuses = {status for _, status, _ in results}
    assert statuses == {200}, [r for r in results if r[1] != 200][:5]
    versions = [version for _, _, version in results]
    assert versions[0] == first.model_version and versions[-1] == second.model_version
    assert len(results) > 50 and code == 0
    assert f"-> {second.model_version}" in server.log.read_text()


def _in_flight(url: str) -> float:
    """Requests the server is handling now, not counting this scrape itself."""
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("modelyard_requests_in_flight "):
            return float(line.split()[-1]) - 1
    return 0.0


def test_sigterm_finishes_requests_in_flight(trained, use_session_home) -> None:  # type: ignore[no-untyped-def]
    slow = Server(
        "digits-cnn@candidate", "poll_interval_s=0", "max_delay_ms=3000", "max_batch_size=64"
    )
    results: list[int] = []

    def one() -> None:
        response = httpx.post(
            f"{slow.url}/v1/models/digits-cnn:predict",
            json={"instances": [[[0] * 8] * 8]},
            timeout=10,
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    # SIGTERM only once all eight wait in the batcher (for max_delay): on a busy
    # machine the threads may take a while to connect.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (waiting := _in_flight(slow.url)) < len(threads):
        time.sleep(0.01)
    code = slow.stop()
    assert waiting == len(threads)
    for thread in threads:
        thread.join()
    assert results == [200] * 8 and code == 0


def test_a_broken_new_version_is_not_swapped_in(home: Path, tmp_path: Path) -> None:
    import shutil

    import mlflow

    from modelyard import registry, tracking
    from modelyard.mlflow_model import log_bundle_model

    first = train(compose_config(FAST))
    server = Server("digits-cnn@candidate", "poll_interval_s=0.3")
    try:
        broken = tmp_path / "bundle"
        shutil.copytree(first.bundle_path, broken)
        (broken / "model.onnx").write_bytes(b"this is not an ONNX graph")
        tracking.configure()
        with mlflow.start_run(experiment_id=first.experiment_id):
            images = np.zeros((2, 8, 8, 1), np.uint8)
            uri = log_bundle_model(broken, images, np.full((2, 10), 0.1, np.float32))
        assert registry.register(uri, "digits-cnn") == "2"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "not swapped in" not in server.log.read_text():
            time.sleep(0.2)
        response = httpx.post(
            f"{server.url}/v1/models/digits-cnn:predict", json={"instances": [[[0] * 8] * 8]}
        )
        assert response.status_code == 200 and response.json()["model_version"] == "1"
        time.sleep(2.5)  # ~8 polls: the broken version is tried again, but with back-off
        metrics = httpx.get(f"{server.url}/metrics").text
        failed = re.search(
            r'modelyard_reloads_total\{model="digits-cnn",result="failed"\} (\S+)', metrics
        )
        assert failed and 2 <= float(failed[1]) <= 4, metrics  # pauses of 0.3, 0.6, 1.2 s
        log = server.log.read_text()
        assert "version 2 not swapped in" in log and "trying it again in 0.6s" in log
        ok = httpx.post(
            f"{server.url}/v1/models/digits-cnn:predict", json={"instances": [[[0] * 8] * 8]}
        )
        assert ok.status_code == 200 and ok.json()["model_version"] == "1"
    finally:
        assert server.stop() == 0


def _request_total(metrics_text: str) -> float:
    prefix = 'modelyard_requests_total{route="/v1/models/{name}:predict",status="200"}'
    return sum(
        float(line.split()[-1]) for line in metrics_text.splitlines() if line.startswith(prefix)
    )


def test_metrics_add_up_across_workers(trained, use_session_home) -> None:  # type: ignore[no-untyped-def]
    server = Server("digits-cnn@candidate", "--workers", "2", "poll_interval_s=0")
    sent = 60
    try:

        def one() -> None:
            # A fresh connection per request, so the kernel spreads them over workers.
            response = httpx.post(
                f"{server.url}/v1/models/digits-cnn:predict",
                json={"instances": [[[0] * 8] * 8]},
                timeout=10,
            )
            assert response.status_code == 200

        threads = [threading.Thread(target=one) for _ in range(sent)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        scrapes = [httpx.get(f"{server.url}/metrics").text for _ in range(6)]
    finally:
        assert server.stop() == 0
    # Whichever worker answers the scrape, it reports the whole server's count.
    assert [_request_total(text) for text in scrapes] == [float(sent)] * 6
    info = [line for line in scrapes[0].splitlines() if line.startswith("modelyard_model_info{")]
    assert info == ['modelyard_model_info{model="digits-cnn",version="1"} 1.0'], info
