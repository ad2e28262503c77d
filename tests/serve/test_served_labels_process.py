"""A real server process serving a text model with ``min_confidence``: the prediction
log (SQLite and PostgreSQL) and ``modelyard_predictions_total`` record the label each
client was served (the low-confidence label below the served threshold or the
request's own), the log keeps the model's top class beside it where they differ, and
live accuracy scores the served answer."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from tests.helpers import Server
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
