"""Security properties of the serving path: API keys, and no pickle anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import httpx
import pytest
from tests.helpers import Server

pytestmark = pytest.mark.slow
PREDICT = "/v1/models/digits-cnn:predict"
PAYLOAD = {"instances": [[[0] * 8] * 8]}


def test_api_key_check_is_constant_time(make_client, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import hmac

    monkeypatch.setenv("MODELYARD_API_KEY", "k3y")
    client = make_client()
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert client.post(PREDICT, json=PAYLOAD, headers={"x-api-key": "k3"}).status_code == 401
    assert client.post(PREDICT, json=PAYLOAD, headers={"x-api-key": "k3y"}).status_code == 200
    assert compared == [(b"k3", b"k3y"), (b"k3y", b"k3y")]


def test_api_keys_never_reach_the_server_log(
    trained, use_session_home, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    secret = f"key-{uuid.uuid4().hex}"
    guess = f"guess-{uuid.uuid4().hex}"
    monkeypatch.setenv("MODELYARD_API_KEY", secret)
    server = Server("digits-cnn@candidate", "poll_interval_s=0")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.post(PREDICT, json=PAYLOAD).status_code == 401
            for headers in (
                {"x-api-key": guess},
                {"authorization": f"Bearer {guess}"},
                {"authorization": f"Basic {guess}"},
            ):
                assert client.post(PREDICT, json=PAYLOAD, headers=headers).status_code == 401
            good = {"authorization": f"Bearer {secret}"}
            assert client.post(PREDICT, json=PAYLOAD, headers=good).status_code == 200
            assert client.post(PREDICT, content=b"{", headers=good).status_code == 400
            assert client.get("/nowhere", headers={"x-api-key": guess}).status_code == 401
            assert secret not in client.get("/metrics").text
    finally:
        assert server.stop() == 0
    log = server.log.read_text()
    assert "serving digits-cnn" in log  # the log was written at all
    assert secret not in log and guess not in log


_NO_PICKLE = """
import pickle, sys

def refuse(*args, **kwargs):
    raise AssertionError("pickle was used on the serving path")

pickle.load = pickle.loads = refuse
try:
    import cloudpickle
    cloudpickle.load = cloudpickle.loads = refuse
except ImportError:
    pass
class NoTorch:  # `import torch` now fails: serving must not need it
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not allowed on the serving path")
        return None

sys.meta_path.insert(0, NoTorch())

from starlette.testclient import TestClient
from modelyard.serve.app import create_app
from modelyard.serve.settings import settings_from

settings = settings_from(model=sys.argv[1], poll_interval_s=0)
with TestClient(create_app(settings)) as client:
    response = client.post("/v1/models/digits-cnn:predict", json={"instances": [[[9] * 8] * 8]})
    assert response.status_code == 200, response.text
    assert client.get("/v2/models/digits-cnn").status_code == 200
assert "torch" not in sys.modules
print("served without pickle or torch")
"""


@pytest.mark.parametrize("source", ["registry", "folder"])
def test_serving_loads_onnx_and_json_only(trained, use_session_home, source: str) -> None:  # type: ignore[no-untyped-def]
    model = "digits-cnn@candidate" if source == "registry" else str(trained.bundle_path)
    result = subprocess.run(
        [sys.executable, "-c", _NO_PICKLE, model],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "served without pickle or torch" in result.stdout
