"""``modelyard rollback`` under load: a server following @production answers with
the earlier version within one poll interval plus the swap, and no request fails."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from tests.helpers import Server, run_cli
from tests.serve.conftest import Versions

pytestmark = pytest.mark.slow

POLL_S = 0.3
SWAP_BUDGET_S = 5.0  # load + warm-up of a cached bundle on a shared, loaded 2-core box


def _load(url: str, stop: threading.Event, results: list[tuple[float, int, str]]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                answer = client.post(
                    "/v1/models/digits-cnn:predict", json={"instances": [[[1] * 8] * 8]}
                )
                results.append((started, answer.status_code, answer.json().get("model_version")))
            except httpx.HTTPError as error:
                results.append((started, 0, repr(error)))


def test_rollback_under_load_swaps_back_without_failures(versions: Versions) -> None:
    from mlflow.tracking import MlflowClient

    from modelyard import tracking
    from modelyard.deploy.history import record_move

    tracking.configure()
    client = MlflowClient()
    client.set_registered_model_alias("digits-cnn", "production", "4")
    record_move(client, "digits-cnn", "production", "1", "4")  # as modelyard deploy does
    server = Server("digits-cnn@production", f"poll_interval_s={POLL_S}")
    stop, results = threading.Event(), []  # type: ignore[var-annotated]
    workers = [threading.Thread(target=_load, args=(server.url, stop, results)) for _ in range(4)]
    try:
        for worker in workers:
            worker.start()
        time.sleep(1.0)
        asked_at = time.monotonic()  # the alias moves while the command runs
        done = run_cli("rollback", "digits-cnn", "--env", "production", "--reason", "load test")
        moved_at = time.monotonic()
        assert done.returncode == 0, done.stderr
        assert "digits-cnn@production -> version 1 (was 4)" in done.stdout
        deadline = moved_at + 30
        while time.monotonic() < deadline and not any(r[2] == "1" for r in results[-10:]):
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        code = server.stop()
        client.set_registered_model_alias("digits-cnn", "production", "1")
    assert {status for _, status, _ in results} == {200}, [r for r in results if r[1] != 200][:5]
    assert results[0][2] == "4" and results[-1][2] == "1"
    last_old = max(started for started, _, version in results if version == "4")
    took = last_old - moved_at
    print(
        f"rollback: the command took {moved_at - asked_at:.2f}s; the last answer from "
        f"version 4 began {took:+.2f}s after it returned"
    )
    assert took <= POLL_S + SWAP_BUDGET_S
    assert code == 0 and "swapped digits-cnn version 4 -> 1" in server.log.read_text()
    again = run_cli("rollback", "digits-cnn", "--env", "production")
    assert again.returncode == 1 and "nothing to roll back to" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
