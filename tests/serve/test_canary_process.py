"""Canary traffic on real server processes and the real prediction log (SQLite and
PostgreSQL): a weighted split that is sticky per key (X-Modelyard-Key, else the
request id) over 1,000 keys, and across worker processes; answers that say which
version served them, and metrics and log rows labelled by that version; a canary
and a shadow in one server."""

from __future__ import annotations

import io
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from tests.helpers import Server, logged_rows
from tests.serve.conftest import Versions

from modelyard.monitor.logstore import create_log_engine, predictions

pytestmark = pytest.mark.slow

BODY = {"instances": [[[5] * 8] * 8]}


def _logged(log_url: str) -> list[sa.Row[Any]]:
    engine = create_log_engine(log_url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(sa.select(predictions.c.request_id, predictions.c.version))
            )
    finally:
        engine.dispose()


def test_the_canary_split_is_weighted_and_sticky_per_key(versions: Versions, log_url: str) -> None:
    server = Server(
        "digits-cnn@production",
        "canary=challenger",
        "canary_weight=0.3",
        "poll_interval_s=0",
        f"prediction_log_url={log_url}",
    )
    keys = [f"user-{i}" for i in range(1000)]
    order = keys * 2
    random.Random(0).shuffle(order)
    seen: dict[str, set[str]] = {key: set() for key in keys}
    answered: dict[str, str] = {}
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for n, key in enumerate(order):
                answer = client.post(
                    "/v1/models/digits-cnn:predict",
                    json=BODY,
                    headers={"x-modelyard-key": key, "x-request-id": f"r{n}"},
                )
                assert answer.status_code == 200, answer.text
                seen[key].add(answer.json()["model_version"])
                answered[f"r{n}"] = answer.json()["model_version"]
            # without the header, the request id is the key: the same id, the same version
            by_id = [
                client.post(
                    "/v1/models/digits-cnn:predict", json=BODY, headers={"x-request-id": "id-7"}
                ).json()["model_version"]
                for _ in range(5)
            ]
            # v2 answers say the version too, and the v2 request id is a key
            tensor = {
                "name": "input",
                "shape": [1, 8, 8],
                "datatype": "UINT8",
                "data": BODY["instances"][0],
            }
            v2 = {
                client.post(
                    "/v2/models/digits-cnn/infer", json={"id": "user-1", "inputs": [tensor]}
                ).json()["model_version"]
                for _ in range(3)
            }
            # naming the canary's version asks for it
            pinned = client.post(
                "/v2/models/digits-cnn/versions/4/infer", json={"inputs": [tensor]}
            )
            metrics = client.get("/metrics").text
    finally:
        assert server.stop() == 0
    assert all(len(versions_seen) == 1 for versions_seen in seen.values())  # sticky
    on_canary = sum(versions_seen == {"4"} for versions_seen in seen.values())
    assert 240 <= on_canary <= 360, on_canary  # 30% of 1,000 keys, within ~3 sd
    assert {v for s in seen.values() for v in s} == {"1", "4"}
    assert len(set(by_id)) == 1
    assert v2 == seen["user-1"]
    assert pinned.status_code == 200 and pinned.json()["model_version"] == "4"
    counted = {
        line.split('version="')[1].split('"')[0]: float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("modelyard_answers_total{")
    }
    assert counted["4"] == on_canary * 2 + by_id.count("4") + sum(v == "4" for v in [*v2] * 3) + 1
    logged = {r.request_id: r.version for r in _logged(log_url) if r.request_id in answered}
    assert logged == answered  # every answer logged under the version that gave it


def _ask(url: str, key: str, request_id: str) -> tuple[int, str]:
    """One request on a fresh connection, so it may land on any worker."""
    answer = httpx.post(
        f"{url}/v1/models/digits-cnn:predict",
        json=BODY,
        headers={"x-modelyard-key": key, "x-request-id": request_id},
        timeout=30,
    )
    return answer.status_code, answer.json().get("model_version", answer.text)


def test_two_workers_send_a_key_to_one_version(versions: Versions, tmp_path: Path) -> None:
    """The split is a hash of the key, the same in every worker process (not Python's
    per-process salted hash()): a key meets one version whichever worker answers."""
    log_url = f"sqlite:///{tmp_path / 'log.db'}"
    server = Server(
        "digits-cnn@production",
        "--workers",
        "2",
        "canary=challenger",
        "canary_weight=0.5",
        "poll_interval_s=0",
        f"prediction_log_url={log_url}",
    )
    keys = [f"user-{i}" for i in range(100)]
    asks = [(key, f"{key}-{n}") for n in range(3) for key in keys]
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda ask: _ask(server.url, *ask), asks))
        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text  # both workers' sum
    finally:
        assert server.stop() == 0
    assert {status for status, _ in answers} == {200}, answers[:5]
    by_version: Counter[str] = Counter()
    for (version, _), count in counted_predictions(metrics, "digits-cnn").items():
        by_version[version] += count
    assert by_version == Counter(version for _, version in answers)  # one image each
    seen: dict[str, set[str]] = {key: set() for key in keys}
    for (key, _), (_, version) in zip(asks, answers, strict=True):
        seen[key].add(version)
    assert all(len(versions_seen) == 1 for versions_seen in seen.values())
    assert {v for s in seen.values() for v in s} == {"1", "4"}
    answered = {
        request_id: version for (_, request_id), (_, version) in zip(asks, answers, strict=True)
    }
    logged = {r.request_id: r.version for r in _logged(log_url)}
    assert logged == answered  # both workers logged, each answer under its version


def test_a_canary_and_a_shadow_in_one_server(versions: Versions, log_url: str) -> None:
    """Three versions: production answers most keys, the canary (challenger) the
    rest, and the shadow (staging) mirrors production's answers only, so its rows
    pair with production's under the same request ids."""
    server = Server(
        "digits-cnn@production",
        "canary=challenger",
        "canary_weight=0.3",
        "shadow=staging",
        "shadow_rate=1.0",
        "shadow_queue=512",
        "poll_interval_s=0",
        f"prediction_log_url={log_url}",
    )
    answered: dict[str, str] = {}
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for n in range(200):
                answer = client.post(
                    "/v1/models/digits-cnn:predict",
                    json=BODY,
                    headers={"x-modelyard-key": f"user-{n % 100}", "x-request-id": f"r{n}"},
                )
                assert answer.status_code == 200, answer.text
                answered[f"r{n}"] = answer.json()["model_version"]
            metrics = client.get("/metrics").text
    finally:
        assert server.stop() == 0  # graceful: queued shadow work is logged first
    assert set(answered.values()) == {"1", "4"}
    assert 'modelyard_shadow_info{model="digits-cnn",version="2"} 1.0' in metrics
    rows = _logged(log_url)
    by_version: dict[str, set[str]] = {}
    for row in rows:
        by_version.setdefault(row.version, set()).add(row.request_id)
    assert by_version["1"] == {i for i, v in answered.items() if v == "1"}
    assert by_version["4"] == {i for i, v in answered.items() if v == "4"}
    assert by_version["2"] and by_version["2"] <= by_version["1"]  # mirrors main only
    dropped = [
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('modelyard_shadow_requests_total{outcome="dropped"}')
    ]
    assert len(by_version["2"]) + sum(dropped) >= len(by_version["1"]) - 8


def counted_predictions(metrics: str, model: str) -> Counter[tuple[str, str]]:
    """``modelyard_predictions_total`` of ``model`` by (version, label), as scraped."""
    found: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "modelyard_predictions_total" and sample.labels["model"] == model:
                found[sample.labels["version"], sample.labels["label"]] += int(sample.value)
    return found


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _ask_images(
    client: httpx.Client, labels: list[str], protocol: str, key: str, request_id: str, images: Any
) -> tuple[str, list[str]]:
    """One request of ``images`` (/v1 JSON, /v1 PNG upload, or v2): the version that
    answered and the labels it served."""
    headers = {"x-modelyard-key": key}
    if protocol in ("v1", "upload"):
        headers["x-request-id"] = request_id
        if protocol == "upload":
            files = [
                ("file", (f"{i}.png", _png(image), "image/png")) for i, image in enumerate(images)
            ]
            answer = client.post("/v1/models/digits-cnn:predict", files=files, headers=headers)
        else:
            answer = client.post(
                "/v1/models/digits-cnn:predict", json={"instances": images}, headers=headers
            )
        assert answer.status_code == 200, answer.text
        payload = answer.json()
        return payload["model_version"], [p["label"] for p in payload["predictions"]]
    tensor = {"name": "input", "shape": [len(images), 8, 8], "datatype": "UINT8", "data": images}
    answer = client.post(
        "/v2/models/digits-cnn/infer", json={"id": request_id, "inputs": [tensor]}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    output = next(o for o in payload["outputs"] if o["name"] == "probabilities")
    probabilities = np.asarray(output["data"]).reshape(output["shape"])
    return payload["model_version"], [labels[int(i)] for i in probabilities.argmax(axis=1)]


def test_every_answered_image_is_counted_once_under_its_version(
    versions: Versions, log_url: str
) -> None:
    """``modelyard_predictions_total{version, label}`` holds exactly the labels the
    clients got, under the version that served each (main and canary), and equals
    the prediction log's rows (``log_sample_rate=1``): /v1 (JSON and PNG upload) and
    v2 requests, of one image and of several, alone (computed inline) and concurrent
    (batched)."""
    server = Server(
        "digits-cnn@production",
        "canary=challenger",
        "canary_weight=0.5",
        "poll_interval_s=0",
        "log_sample_rate=1",
        f"prediction_log_url={log_url}",
    )
    rng = np.random.default_rng(0)
    asks = [
        (
            ("v1", "v2", "upload")[n % 3],
            f"user-{n}",
            f"r{n}",
            rng.integers(0, 17, size=(1 if n % 4 else 3, 8, 8)).tolist(),
        )
        for n in range(90)
    ]
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            labels = client.get("/v2/models/digits-cnn").json()["parameters"]["labels"]
            alone = [_ask_images(client, labels, *ask) for ask in asks[:12]]
            with ThreadPoolExecutor(8) as pool:
                together = list(pool.map(lambda ask: _ask_images(client, labels, *ask), asks[12:]))
            metrics = client.get("/metrics").text
    finally:
        assert server.stop() == 0
    answers = alone + together
    served = Counter((version, label) for version, got in answers for label in got)
    assert {version for version, _ in served} == {"1", "4"}
    counted = counted_predictions(metrics, "digits-cnn")
    assert counted == served
    assert sum(counted.values()) == sum(len(images) for *_, images in asks)
    rows = logged_rows(log_url, "request_id, version, label")
    assert Counter((version, label) for _, version, label in rows) == counted
    by_request = {request_id: version for request_id, version, _ in rows}
    assert by_request == {ask[2]: version for ask, (version, _) in zip(asks, answers, strict=True)}
