"""A real server process serving a text model with ``min_confidence``: the prediction
log (SQLite and PostgreSQL) and ``modelyard_predictions_total`` record the label each
client was served (the low-confidence label below the served threshold or the
request's own), the log keeps the model's top class beside it where they differ, and
live accuracy scores the served answer. Under a canary split, each version's served
labels (``unknown`` included) are counted under that version, as the log has them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import TEXT_FAST
from tests.helpers import Server, logged_rows, modelyard_home
from tests.serve.test_canary_process import counted_predictions
from tests.text_fixtures import SENTENCES

from modelyard import bundle
from modelyard.monitor.logstore import create_log_engine, read_window
from modelyard.predictor import Predictor
from modelyard.serve.codecs import v2

pytestmark = pytest.mark.slow

MODEL = "langid-nordic-fasttext"
URI = f"{MODEL}@candidate"
TEXTS = [SENTENCES[label][i] for label in SENTENCES for i in (0, 1, 5)] + ["ja", "ok", "x y"]


def _offline() -> tuple[np.ndarray, tuple[str, ...]]:
    loaded = bundle.load(URI)
    return Predictor(loaded).predict_texts(TEXTS).probabilities, loaded.labels


def _served(probabilities: np.ndarray, labels: tuple[str, ...], threshold: float) -> list[str]:
    return [labels[int(r.argmax())] if r.max() >= threshold else "unknown" for r in probabilities]


def _counted(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "modelyard_predictions_total" and sample.labels["model"] == MODEL:
                found[sample.labels["label"]] = sample.value
    return found


def _samples(text: str, name: str) -> dict[str, float]:
    return {
        sample.labels.get("version", ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_log_and_metrics_record_the_served_label(
    trained_text, use_session_home, log_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    probabilities, labels = _offline()
    confidence = np.sort(probabilities.max(axis=1))
    served_threshold = float(
        (confidence[len(confidence) // 2 - 1] + confidence[len(TEXTS) // 2]) / 2
    )
    strict = float((confidence[-1] + 1) / 2)  # every answer falls below it
    assert strict < 1
    monkeypatch.setenv("MODELYARD_PREDICTION_LOG", log_url)
    server = Server(
        URI,
        "poll_interval_s=0",
        f"min_confidence={served_threshold}",
        "low_confidence_label=unknown",
        "log_flush_interval_s=600",  # only the graceful stop writes: one write to check
    )
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            predict = f"/v1/models/{MODEL}:predict"
            answers = {
                "served": client.post(
                    predict, json={"texts": TEXTS}, headers={"x-request-id": "s"}
                ),
                "none": client.post(
                    predict,
                    json={"texts": TEXTS, "min_confidence": 0},
                    headers={"x-request-id": "n"},
                ),
                "strict": client.post(
                    predict,
                    json={"text": TEXTS[0], "min_confidence": strict},
                    headers={"x-request-id": "x"},
                ),
            }
            for answer in answers.values():
                assert answer.status_code == 200, answer.text
            objects = np.empty(len(TEXTS), dtype=object)
            objects[:] = TEXTS
            body, _ = v2.encode_request({"input": objects}, request_id="v")
            payload = json.loads(body)
            payload["parameters"] = {"min_confidence": strict}
            infer = client.post(f"/v2/models/{MODEL}/infer", json=payload)
            assert infer.status_code == 200, infer.text
            # live accuracy scores the served answer: unknown for a true top class is wrong
            top = labels[int(probabilities[0].argmax())]
            feedback = client.post("/v1/feedback", json={"id": "x", "label": top})
            assert feedback.status_code == 200, feedback.text
            refused = client.post("/v1/feedback", json={"id": "x", "label": "unknown"})
            assert refused.status_code == 422 and "unknown" in refused.text
            metrics = client.get("/metrics").text
    finally:
        assert server.stop() == 0

    expected = {
        "s": _served(probabilities, labels, served_threshold),
        "n": _served(probabilities, labels, 0.0),
        "x": _served(probabilities[:1], labels, strict),
        "v": _served(probabilities, labels, strict),
    }
    # what the clients got is what the test expects
    assert [p["label"] for p in answers["served"].json()["predictions"]] == expected["s"]
    assert [p["label"] for p in answers["strict"].json()["predictions"]] == ["unknown"]
    assert "unknown" in expected["s"] and set(expected["s"]) - {"unknown"}

    engine = create_log_engine(log_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT request_id, label, top_label FROM predictions ORDER BY id")
            ).all()
        window = read_window(engine, MODEL)
    finally:
        engine.dispose()
    logged: dict[str, list[tuple[str, str | None]]] = {}
    for request_id, label, top in rows:
        logged.setdefault(request_id, []).append((label, top))
    top_labels = [labels[int(row.argmax())] for row in probabilities]
    for request_id, served in expected.items():
        tops = top_labels[: len(served)]
        assert logged[request_id] == [
            (label, None if label == top else top) for label, top in zip(served, tops, strict=True)
        ], request_id
    # drift reads the model's own answers
    assert window.labels[: len(TEXTS)] == top_labels

    live = _samples(metrics, "modelyard_live_accuracy")
    assert list(live.values()) == [0.0], live
    assert list(_samples(metrics, "modelyard_live_accuracy_labels").values()) == [1.0]

    counted = _counted(metrics)
    every = [label for served in expected.values() for label in served]
    assert counted == {label: float(every.count(label)) for label in set(every)}


@pytest.fixture(scope="module")
def text_versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The langid model in a home of its own: version 1 (production) and a plain copy,
    version 2 (challenger), so a canary split has two versions that answer alike."""
    from tests.serve.versions import copy_bundle, register_copy, set_alias
    from tests.text_fixtures import write_ud_fixture

    from modelyard import tracking
    from modelyard.config import compose_config
    from modelyard.train.run import train

    folder = tmp_path_factory.mktemp("text-canary-home")
    try:
        with modelyard_home(folder):
            tracking.configure()
            data = write_ud_fixture(tmp_path_factory.mktemp("ud-fixture"), copies=4)
            first = train(compose_config([*TEXT_FAST, f"data.path={data}"]))
            work = tmp_path_factory.mktemp("text-bundles")
            copy = register_copy(
                copy_bundle(first.bundle_path, work / "same" / "bundle"), first.experiment_id, MODEL
            )
            assert (first.model_version, copy) == ("1", "2")
            set_alias("production", "1", MODEL)
            set_alias("challenger", "2", MODEL)
            yield folder
    finally:
        tracking.configure()  # the restored home's


def _ask_texts(
    client: httpx.Client, protocol: str, key: str, request_id: str, texts: list[str]
) -> tuple[str, list[str]]:
    """One /v1 request (the served threshold) or v2 request (its own, 0.5): the version
    that answered and the labels it served."""
    headers = {"x-modelyard-key": key}
    if protocol == "v1":
        headers["x-request-id"] = request_id
        answer = client.post(f"/v1/models/{MODEL}:predict", json={"texts": texts}, headers=headers)
        assert answer.status_code == 200, answer.text
        payload = answer.json()
        return payload["model_version"], [p["label"] for p in payload["predictions"]]
    objects = np.empty(len(texts), dtype=object)
    objects[:] = texts
    body, _ = v2.encode_request({"input": objects}, request_id=request_id)
    request: dict[str, Any] = json.loads(body)
    request["parameters"] = {"min_confidence": 0.5}
    answer = client.post(f"/v2/models/{MODEL}/infer", json=request, headers=headers)
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    output = next(o for o in payload["outputs"] if o["name"] == "label")
    return payload["model_version"], list(output["data"])


def test_a_canary_split_counts_served_labels_under_each_version(
    text_versions: Path, log_url: str
) -> None:
    """``min_confidence`` above the median confidence: both versions serve ``unknown``,
    and each answer's labels are counted under the version that served them, equal to
    what the clients got and to the log's rows (``log_sample_rate=1``)."""
    loaded = bundle.load(f"models:/{MODEL}/1")
    probabilities = Predictor(loaded).predict_texts(TEXTS).probabilities
    threshold = float(np.median(probabilities.max(axis=1)))
    server = Server(
        f"{MODEL}@production",
        "canary=challenger",
        "canary_weight=0.5",
        "poll_interval_s=0",
        "log_sample_rate=1",
        f"min_confidence={threshold}",
        "low_confidence_label=unknown",
        f"prediction_log_url={log_url}",
    )
    asks = [
        (
            "v1" if n % 3 else "v2",
            f"user-{n}",
            f"t{n}",
            TEXTS[n % 5 :: 4] if n % 2 else [TEXTS[n % len(TEXTS)]],
        )
        for n in range(60)
    ]
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            alone = [_ask_texts(client, *ask) for ask in asks[:10]]
            with ThreadPoolExecutor(8) as pool:
                together = list(pool.map(lambda ask: _ask_texts(client, *ask), asks[10:]))
            metrics = client.get("/metrics").text
    finally:
        assert server.stop() == 0
    served = Counter((version, label) for version, got in alone + together for label in got)
    assert {version for version, _ in served} == {"1", "2"}
    assert {version for version, label in served if label == "unknown"} == {"1", "2"}
    counted = counted_predictions(metrics, MODEL)
    assert counted == served
    rows = logged_rows(log_url, "version, label")
    assert Counter((version, label) for version, label in rows) == counted
