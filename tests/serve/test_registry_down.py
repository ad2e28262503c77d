"""The MLflow tracking server is down: a starting server fails fast with one clear
line; a running server keeps serving and its alias poll backs off."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import pytest
from tests.helpers import MlflowServer, Server, free_port, run_cli

from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.runtime import ModelRuntime
from modelyard.serve.settings import settings_from

PREDICT = "/v1/models/digits-cnn:predict"
PAYLOAD = {"instances": [[[0] * 8] * 8]}


@pytest.mark.slow
def test_a_starting_server_fails_fast_naming_the_tracking_uri(home) -> None:  # type: ignore[no-untyped-def]
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    result = run_cli(
        "serve",
        "digits-cnn@candidate",
        "--port",
        str(free_port()),
        f"tracking_uri={uri}",
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip()
    assert f"cannot reach the MLflow tracking server at {uri}" in output
    assert "start it" in output and "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert elapsed < 30  # MLflow alone would retry for minutes


def test_the_alias_poll_backs_off_while_the_registry_is_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelyard.serve import runtime as runtime_module

    settings = settings_from(model="digits-cnn@candidate", poll_interval_s=0.01)
    runtime = ModelRuntime(settings, ServerMetrics())
    attempts: list[float] = []
    reachable = False

    def resolve(uri: str, settings: object) -> str | None:
        attempts.append(time.monotonic())
        if not reachable:
            raise ConnectionError("registry unreachable")
        return None

    class _Bundle:
        version = "1"
        name = "digits-cnn"

    class _Model:
        bundle = _Bundle()
        version = "1"
        name = "digits-cnn"

    monkeypatch.setattr(runtime_module, "_resolve", resolve)
    runtime.current = _Model()  # type: ignore[assignment]

    async def scenario() -> None:
        nonlocal reachable
        poller = asyncio.create_task(runtime._poll_forever())
        await asyncio.sleep(1.0)
        failing = len(attempts)
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        # Doubling from 10 ms, capped at ten intervals (100 ms): few attempts, growing gaps.
        assert 4 <= failing <= 16, attempts
        assert max(gaps) >= 0.08 and gaps[1] > gaps[0]
        assert "alias check failed" in (runtime.last_reload_error or "")
        reachable = True
        await asyncio.sleep(0.5)
        # Back to the normal interval once the registry answers again.
        assert len(attempts) - failing > 10
        poller.cancel()

    asyncio.run(scenario())


def test_mlflow_retry_limits_parse_and_user_values_win(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import environment_variables as mlflow_env

    from modelyard.serve.registry_check import MLFLOW_CLIENT_DEFAULTS, limit_mlflow_retries

    for name in MLFLOW_CLIENT_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "33")
    limit_mlflow_retries()
    assert mlflow_env.MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 2
    assert mlflow_env.MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get() == 1
    assert mlflow_env.MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 33


@pytest.mark.slow
def test_a_running_server_keeps_serving_while_mlflow_is_down(trained, use_session_home) -> None:  # type: ignore[no-untyped-def]
    # Over the session's store, artifacts read from its folder; killed and restarted.
    mlflow_server = MlflowServer(
        f"sqlite:///{use_session_home / 'mlflow.db'}",
        use_session_home / "mlartifacts",
        use_session_home / "mlflow-server.log",
        proxied=False,
    )
    mlflow_server.start()
    server = None
    try:
        server = Server(
            "digits-cnn@candidate", f"tracking_uri={mlflow_server.uri}", "poll_interval_s=0.3"
        )
        mlflow_server.kill()
        statuses = []
        latencies = []
        with httpx.Client(timeout=10) as client:
            until = time.monotonic() + 8
            while time.monotonic() < until:
                started = time.monotonic()
                response = client.post(f"{server.url}{PREDICT}", json=PAYLOAD)
                latencies.append(time.monotonic() - started)
                statuses.append(response.status_code)
                time.sleep(0.02)
            assert client.get(f"{server.url}/v2/health/ready").status_code == 200
        assert set(statuses) == {200} and len(statuses) > 50
        assert max(latencies) < 1.0  # the failing alias poll never blocks requests
        mlflow_server.start()  # same port, same store
        deadline = time.monotonic() + 30
        while "alias check works again" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.3)
    finally:
        if server is not None:
            assert server.stop() == 0
        mlflow_server.kill()
    log = server.log.read_text()
    assert "alias check failed" in log
