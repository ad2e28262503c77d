"""The server logs what it answers, exports drift gauges, and shrugs off a dead log DB."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient
from tests.helpers import free_port, logged_rows

from modelyard import bundle
from modelyard.features.image import ImageSpec, to_model_input
from modelyard.modality.image import from_model_input
from modelyard.monitor.logstore import LogWindow, create_log_engine, read_window
from modelyard.monitor.profile import image_summaries
from modelyard.serve.codecs import v2

pytestmark = pytest.mark.slow

PREDICT = "/v1/models/digits-cnn:predict"
INFER = "/v2/models/digits-cnn/infer"


def _wait_for_rows(url: str, rows: int, timeout: float = 10) -> LogWindow:
    engine = create_log_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            window = read_window(engine, "digits-cnn")
            if len(window) >= rows or time.monotonic() > deadline:
                return window
            time.sleep(0.05)
    finally:
        engine.dispose()


def test_v1_and_v2_predictions_are_logged_with_their_summaries(
    make_client, digits_test_images: np.ndarray, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    client: TestClient = make_client(f"prediction_log_url={url}", "log_flush_interval_s=0.05")
    images = digits_test_images[:4]
    answer = client.post(
        PREDICT, json={"instances": images[..., 0].tolist()}, headers={"x-request-id": "abc"}
    ).json()
    spec = bundle.load("digits-cnn@candidate").preprocessing
    body, headers = v2.encode_request(
        {"input": to_model_input(digits_test_images[4:7], spec)}, request_id="v2-req"
    )
    assert client.post(INFER, content=body, headers=headers).status_code == 200
    window = _wait_for_rows(url, 7)
    assert window.request_ids == ["abc"] * 4 + ["v2-req"] * 3
    assert window.labels[:4] == [p["label"] for p in answer["predictions"]]
    assert np.allclose(window.confidences[:4], [p["confidence"] for p in answer["predictions"]])
    assert set(window.versions) == {answer["model_version"]}
    expected = image_summaries(digits_test_images[:7])
    for name, values in expected.items():
        # v2 float inputs are mapped back to pixels; rounding keeps them exact.
        assert np.allclose(window.summaries[name], values, atol=1e-6), name
    assert window.projection.shape == (7, 4)
    assert np.all(window.latencies > 0)


def test_sampling_and_switching_the_log_off(
    make_client, digits_test_images: np.ndarray, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    payload = {"instances": digits_test_images[:2, ..., 0].tolist()}
    for setting in ("log_sample_rate=0", "log_predictions=false"):
        url = f"sqlite:///{tmp_path / 'log.db'}"
        client = make_client(f"prediction_log_url={url}", setting, "log_flush_interval_s=0.05")
        for _ in range(5):
            assert client.post(PREDICT, json=payload).status_code == 200
        time.sleep(0.3)
        assert len(_wait_for_rows(url, 1, timeout=0.2)) == 0, setting


def test_periodic_drift_check_sets_the_gauges(
    make_client, digits_test_images: np.ndarray, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    client = make_client(
        f"prediction_log_url={url}",
        "log_flush_interval_s=0.05",
        "drift_interval_s=0.2",
        "drift_window=48",
    )
    inverted = 255 - digits_test_images
    for _ in range(3):
        response = client.post(PREDICT, json={"instances": inverted[..., 0].tolist()})
        assert response.status_code == 200
    deadline = time.monotonic() + 20
    text = ""
    while time.monotonic() < deadline:
        text = client.get("/metrics").text
        if 'modelyard_drift_detected{model="digits-cnn"} 1.0' in text:
            break
        time.sleep(0.1)
    assert 'modelyard_drift_detected{model="digits-cnn"} 1.0' in text
    for check in ("mean_intensity", "confidence", "labels", "embedding"):
        assert re.search(rf'modelyard_drift_score{{check="{check}",model="digits-cnn"}} \S+', text)
        assert re.search(
            rf'modelyard_drift_p_value{{check="{check}",model="digits-cnn"}} \S+', text
        )
    p_value = re.search(
        r'modelyard_drift_p_value{check="mean_intensity",model="digits-cnn"} (\S+)', text
    )
    assert p_value is not None and float(p_value.group(1)) < 1e-6


def test_a_dead_log_database_neither_fails_nor_slows_requests(
    make_client, digits_test_images: np.ndarray
) -> None:  # type: ignore[no-untyped-def]
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"  # nothing listens
    client = make_client(
        f"prediction_log_url={url}",
        "log_buffer_records=10",
        "log_flush_interval_s=0.05",
        "log_stop_timeout_s=0.5",
    )
    payload = {"instances": digits_test_images[:4, ..., 0].tolist()}
    for _ in range(5):
        started = time.perf_counter()
        assert client.post(PREDICT, json=payload).status_code == 200
        assert time.perf_counter() - started < 1.0
    text = client.get("/metrics").text
    dropped = re.search(r"^modelyard_prediction_log_dropped_total (\S+)", text, re.M)
    assert dropped is not None and float(dropped.group(1)) >= 10  # 20 records, room for 10


def test_requests_queued_for_the_log_beyond_its_capacity_are_dropped_and_counted(
    make_client, digits_test_images: np.ndarray, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    # A long flush interval: the requests stay queued for the log thread meanwhile.
    client = make_client(
        f"prediction_log_url={url}", "log_buffer_records=3", "log_flush_interval_s=30"
    )
    payload = {"instances": digits_test_images[:2, ..., 0].tolist()}
    for _ in range(2):
        assert client.post(PREDICT, json=payload).status_code == 200
    assert "modelyard_prediction_log_dropped_total 2.0" in client.get("/metrics").text
    client.app.state.monitor.flush_queued()
    client.app.state.monitor.log._write_buffered()
    assert len(_wait_for_rows(url, 2)) == 2


def test_a_full_chunk_of_queued_rows_is_written_before_the_interval(
    make_client, digits_test_images: np.ndarray, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    client = make_client(f"prediction_log_url={url}", "log_flush_interval_s=60")
    rows = digits_test_images[:8, ..., 0].tolist()
    chunk = client.app.state.settings.log_write_rows
    below = chunk - len(rows)
    for _ in range(below // len(rows)):
        assert client.post(PREDICT, json={"instances": rows}).status_code == 200
    time.sleep(0.3)
    assert len(_wait_for_rows(url, 1, timeout=0.1)) == 0  # not yet a chunk: it waits
    for _ in range(2):  # crosses log_write_rows: written now, not in a minute
        assert client.post(PREDICT, json={"instances": rows}).status_code == 200
    assert len(_wait_for_rows(url, chunk, timeout=10)) >= chunk


@pytest.mark.parametrize(("mean", "std"), [(0.1307, 0.3081), (0.5, 0.5), (0.0, 1.0)])
def test_model_input_maps_back_to_the_exact_pixels(mean: float, std: float) -> None:
    # The log summarises v2 FP32 requests from these pixels: they must be the client's.
    pixels = np.random.default_rng(0).integers(0, 256, (64, 9, 7, 1), dtype=np.uint8)
    pixels[0] = 0
    pixels[1] = 255
    spec = ImageSpec(height=9, width=7, channels=1, mean=mean, std=std)
    inputs = to_model_input(pixels, spec)
    before = inputs.copy()
    assert np.array_equal(from_model_input(inputs, spec), pixels)
    assert np.array_equal(inputs, before)  # the request's array is left as it was
    assert from_model_input(inputs[:0], spec).shape == (0, 9, 7, 1)


def test_one_log_write_labels_each_request_under_its_own_rule(tmp_path: Path) -> None:
    """Rows of several text requests summarised together: each is labelled under the
    rule it was answered with; a low-confidence label that is the top class itself,
    or no rule, leaves top_label NULL; NaN confidence is not confident."""
    from types import SimpleNamespace

    from modelyard.features.text import TextSpec
    from modelyard.modality import modality_for
    from modelyard.modality.base import AnswerRule
    from modelyard.serve.metrics import ServerMetrics
    from modelyard.serve.monitoring import ServingMonitor
    from modelyard.serve.settings import ServeSettings

    url = f"sqlite:///{tmp_path / 'log.db'}"
    monitor = ServingMonitor(ServeSettings(prediction_log_url=url), ServerMetrics())
    bundle = SimpleNamespace(reference_profile={}, labels=("da", "other"))
    model = SimpleNamespace(
        name="t",
        version="1",
        modality=modality_for("text"),
        spec=TextSpec(),
        bundle=bundle,
        role="main",
    )
    confident, unsure, nan = [0.9, 0.1], [0.6, 0.4], [float("nan"), 0.5]
    requests = [
        ("none", [confident, unsure], None),
        ("served", [confident, unsure, nan], AnswerRule(0.7, "unknown")),
        ("other", [unsure, [0.35, 0.65]], AnswerRule(0.7, "other")),
    ]
    for request_id, rows, rule in requests:
        texts = ["hej"] * len(rows)
        outputs = {"probabilities": np.array(rows, dtype=np.float32)}
        assert monitor.observe(model, request_id, texts, outputs, 0.001, True, rule=rule)  # type: ignore[arg-type]
    monitor.flush_queued()
    assert monitor.log is not None
    monitor.log.start()
    monitor.log.close()
    assert logged_rows(url, "request_id, label, top_label") == [
        ("none", "da", None),
        ("none", "da", None),
        ("served", "da", None),
        ("served", "unknown", "da"),
        ("served", "unknown", "da"),  # NaN: argmax is the NaN's class
        ("other", "other", "da"),
        ("other", "other", None),  # below the threshold, but other is its top class
    ]


def test_recent_request_ids_keep_the_newest_and_forget_the_oldest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feedback may name a request whose row is not written yet: the monitor remembers
    the newest ids it queued, up to its bound, and forgets the oldest first."""
    from types import SimpleNamespace

    from modelyard.serve import monitoring
    from modelyard.serve.metrics import ServerMetrics
    from modelyard.serve.settings import ServeSettings

    monkeypatch.setattr(monitoring, "_RECENT_IDS", 5)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    monitor = monitoring.ServingMonitor(ServeSettings(prediction_log_url=url), ServerMetrics())
    model = SimpleNamespace(name="m", version="1", role="main")
    outputs = {"probabilities": np.array([[0.9, 0.1]], dtype=np.float32)}
    ids = [f"r{i}" for i in range(8)] + ["r6"]  # a client may repeat an id
    for request_id in ids:
        assert monitor.observe(model, request_id, [0], outputs, 0.001)  # type: ignore[arg-type]
    assert [monitor.recently_logged(f"r{i}") for i in range(8)] == [False] * 3 + [True] * 5
