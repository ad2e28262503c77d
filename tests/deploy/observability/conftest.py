"""Deploy fixtures: the series names a real server's /metrics exports."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from starlette.testclient import TestClient
from tests.deploy.observability.metric_names import exported_names

from modelyard.serve.app import create_app
from modelyard.serve.settings import settings_from


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:  # CI installs it (.ci/run); failing beats a silent skip
        pytest.fail("promtool not found: apt-get install -y prometheus")
    return path


@pytest.fixture(scope="module")
def served_names(trained) -> set[str]:  # type: ignore[no-untyped-def]
    """Names on /metrics of the app serving the session's digits bundle, after one
    /v1 predict and one /v2 infer so that every labelled metric has samples."""
    settings = settings_from([], model=str(trained.bundle_path), poll_interval_s=0)
    with TestClient(create_app(settings)) as client:
        image = np.zeros((8, 8), dtype=np.uint8).tolist()
        answer = client.post("/v1/models/digits-cnn:predict", json={"instances": [image]})
        assert answer.is_success
        labelled = {"id": answer.headers["x-request-id"], "label": "0"}
        assert client.post("/v1/feedback", json=labelled).is_success  # live accuracy gauges
        tensor = {"name": "input", "shape": [1, 8, 8], "datatype": "UINT8", "data": image}
        assert client.post("/v2/models/digits-cnn/infer", json={"inputs": [tensor]}).is_success
        return exported_names(client.get("/metrics").text)
