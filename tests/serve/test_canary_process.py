"""Canary traffic on a real server process and the real prediction log: a weighted
split that is sticky per key (X-Modelyard-Key, else the request id) over 1,000 keys,
answers that say which version served them, and metrics and log rows labelled by
that version."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from tests.helpers import Server
from tests.serve.conftest import Versions

from modelyard.monitor.logstore import create_log_engine, predictions

pytestmark = pytest.mark.slow

BODY = {"instances": [[[5] * 8] * 8]}


def test_the_canary_split_is_weighted_and_sticky_per_key(
    versions: Versions, tmp_path: Path
) -> None:
    log_url = f"sqlite:///{tmp_path / 'log.db'}"
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
    engine = create_log_engine(log_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(predictions.c.request_id, predictions.c.version)
            ).all()
    finally:
        engine.dispose()
    logged = {r.request_id: r.version for r in rows if r.request_id in answered}
    assert logged == answered  # every answer logged under the version that gave it
