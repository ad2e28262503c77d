"""A real server process with its prediction log on SQLite and on PostgreSQL:
SIGTERM loses nothing, SIGKILL loses at most the last flush interval."""

from __future__ import annotations

import signal
import time

import httpx
import pytest
from tests.helpers import Server

from modelyard.monitor.logstore import create_log_engine, read_window

pytestmark = pytest.mark.slow

PAYLOAD = {"instances": [[[0] * 8] * 8, [[255] * 8] * 8]}  # two rows per request


def _logged_request_ids(url: str) -> list[str]:
    engine = create_log_engine(url)
    try:
        return read_window(engine, "digits-cnn").request_ids
    finally:
        engine.dispose()


def _predict(client: httpx.Client, server: Server, request_id: str) -> None:
    response = client.post(
        f"{server.url}/v1/models/digits-cnn:predict",
        json=PAYLOAD,
        headers={"x-request-id": request_id},
    )
    assert response.status_code == 200, response.text


def test_sigterm_writes_every_buffered_record(
    trained, use_session_home, log_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MODELYARD_PREDICTION_LOG", log_url)  # the server reads it too
    # A flush interval longer than the test: only the graceful stop writes records.
    server = Server("digits-cnn@candidate", "poll_interval_s=0", "log_flush_interval_s=600")
    try:
        with httpx.Client(timeout=10) as client:
            for i in range(25):
                _predict(client, server, f"term-{i}")
        assert _logged_request_ids(log_url) == []
    finally:
        assert server.stop() == 0
    logged = _logged_request_ids(log_url)
    assert sorted(logged) == sorted(f"term-{i}" for i in range(25) for _ in range(2))


def test_sigkill_loses_at_most_one_flush_interval(
    trained, use_session_home, log_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MODELYARD_PREDICTION_LOG", log_url)
    interval = 1.0
    server = Server("digits-cnn@candidate", "poll_interval_s=0", f"log_flush_interval_s={interval}")
    answered: dict[str, float] = {}
    try:
        with httpx.Client(timeout=10) as client:
            stop_at = time.monotonic() + 3.5
            i = 0
            while time.monotonic() < stop_at:
                _predict(client, server, f"kill-{i}")
                answered[f"kill-{i}"] = time.time()
                i += 1
                time.sleep(0.005)  # steady traffic, not a flood that makes each write slow
        killed_at = time.time()
        server.process.send_signal(signal.SIGKILL)
    finally:
        server.process.wait(timeout=30)
    logged = set(_logged_request_ids(log_url))
    assert logged, "nothing was written in 3.5 s of traffic"
    assert logged <= set(answered)
    lost = {rid: killed_at - at for rid, at in answered.items() if rid not in logged}
    # A record is lost only if it arrived after the last write began: within one
    # interval of the kill, plus the write's own time and scheduling on a busy machine.
    slack = 0.5
    too_old = {rid: round(age, 2) for rid, age in lost.items() if age > interval + slack}
    assert not too_old, f"lost records answered long before the kill: {too_old}"
