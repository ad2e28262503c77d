"""Faults under load: a killed and restarted server, SIGTERM with traffic, and a
prediction-log database that goes away and comes back.

Timings on the shared test machine vary with its load, so the restart time is
asserted with a generous bound and printed; benchmarks/reliability records it.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.helpers import Server, free_port

from modelyard.monitor.logstore import create_log_engine, read_window

pytestmark = pytest.mark.slow
PREDICT = "/v1/models/digits-cnn:predict"
PAYLOAD = {"instances": [[[0] * 8] * 8]}


def _logged(url: str) -> list[str]:
    engine = create_log_engine(url)
    try:
        return read_window(engine, "digits-cnn").request_ids
    finally:
        engine.dispose()


class _Load:
    """Threads posting predictions with unique request ids; records what was answered."""

    def __init__(self, url: str, threads: int = 4):
        self.url = url
        self.stop = threading.Event()
        self.answered: dict[str, float] = {}  # request id -> when its 200 arrived
        self.failed: dict[str, str] = {}  # request id -> what went wrong
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, worker: int) -> None:
        with httpx.Client(timeout=10) as client:
            i = 0
            while not self.stop.is_set():
                request_id = f"w{worker}-{i}"
                i += 1
                try:
                    response = client.post(
                        f"{self.url}{PREDICT}", json=PAYLOAD, headers={"x-request-id": request_id}
                    )
                except httpx.HTTPError as error:
                    self.failed[request_id] = repr(error)
                    time.sleep(0.05)  # the server is going away: do not spin
                    continue
                if response.status_code == 200:
                    self.answered[request_id] = time.time()
                else:
                    self.failed[request_id] = f"{response.status_code} {response.text}"

    def __enter__(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join()


def _wait_ready(url: str, process: subprocess.Popen[bytes], limit: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        assert process.poll() is None, "the restarted server exited"
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            time.sleep(0.02)
    raise AssertionError(f"not ready within {limit}s")


def test_sigkill_under_load_then_restart(
    trained, use_session_home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    log_url = f"sqlite:///{tmp_path / 'log.db'}"
    monkeypatch.setenv("MODELYARD_PREDICTION_LOG", log_url)
    interval = 0.5
    bundle = str(trained.bundle_path)
    settings = ("poll_interval_s=0", f"log_flush_interval_s={interval}")
    server = Server(bundle, *settings)
    with _Load(server.url) as load:
        time.sleep(3)
        killed_at = time.time()
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
    assert len(load.answered) > 20, list(load.failed.items())[:5]
    logged = set(_logged(log_url))
    assert logged <= set(load.answered)
    lost = {rid: killed_at - at for rid, at in load.answered.items() if rid not in logged}
    # Lost only if answered after the last write began: one interval, plus the write
    # itself and scheduling on a busy machine.
    too_old = {rid: round(age, 2) for rid, age in lost.items() if age > interval + 0.5}
    assert not too_old, f"lost records answered long before the kill: {too_old}"

    # Restart on the same port and log: time from Popen to ready.
    exe = Path(server.process.args[0])  # type: ignore[index]
    started = time.monotonic()
    restarted = subprocess.Popen(
        [str(exe), "serve", bundle, "--port", str(server.port), *settings],
        stdout=server.log.open("a"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(server.url, restarted)
        ready_s = time.monotonic() - started
        print(f"restart to ready: {ready_s:.2f}s (load average {os.getloadavg()[0]:.1f})")
        # The target is 2 s on an idle machine; this one is shared, so the bound is loose.
        assert ready_s < 15
        response = httpx.post(
            f"{server.url}{PREDICT}", json=PAYLOAD, headers={"x-request-id": "after"}, timeout=10
        )
        assert response.status_code == 200
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0
    assert "after" in _logged(log_url)  # the restarted server appends to the same log


def test_sigterm_under_load_answers_in_flight_and_flushes_the_log(
    trained, use_session_home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    log_url = f"sqlite:///{tmp_path / 'log.db'}"
    monkeypatch.setenv("MODELYARD_PREDICTION_LOG", log_url)
    # Nothing is written before the stop: only the graceful shutdown flushes.
    server = Server(
        str(trained.bundle_path),
        "poll_interval_s=0",
        "log_flush_interval_s=600",
        "log_write_rows=0",
    )
    with _Load(server.url, threads=6) as load:
        time.sleep(2)
        assert _logged(log_url) == []
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=40)
    assert code == 0
    assert len(load.answered) > 20
    logged = _logged(log_url)
    assert sorted(logged) == sorted(load.answered)  # every answer flushed, once
    # After SIGTERM new connections are refused, and a request sent on a keep-alive
    # connection just as the server closes it is reset or closed unanswered: those only
    # fail at the transport, and none of them was processed (no answer lost after
    # inference; checked against the log below).
    transport = ("Connect", "Read", "RemoteProtocolError('Server disconnected without sending")
    http_errors = {rid: e for rid, e in load.failed.items() if not e.startswith(transport)}
    assert not http_errors, http_errors
    assert not set(load.failed) & set(logged)
    print(f"SIGTERM: {len(load.answered)} answered, {len(load.failed)} refused at the transport")


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, to stop and start at will.

    The shared cluster on 5432 serves other test runs and must never be stopped.
    """

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL server binaries are missing: apt-get install postgresql")
        self.bin = Path(found[-1]).parent
        self.folder = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as postgres
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, str(self.bin / tool), *args], check=True, capture_output=True, timeout=120
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        with_cluster = (self.data / "postmaster.pid").exists()
        if with_cluster:
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    cluster.start()
    yield cluster
    cluster.remove()


def _dropped(client) -> float:  # type: ignore[no-untyped-def]
    text = client.get("/metrics").text
    match = re.search(r"^modelyard_prediction_log_dropped_total (\S+)", text, re.M)
    return float(match.group(1)) if match else 0.0


def _wait_logged(url: str, wanted: set[str], limit: float = 20) -> set[str]:
    deadline = time.monotonic() + limit
    logged: set[str] = set()
    while time.monotonic() < deadline:
        try:
            logged = set(_logged(url))
        except Exception:  # the database is still starting
            logged = set()
        if wanted <= logged:
            break
        time.sleep(0.2)
    return logged


def test_log_database_down_then_back(make_client, private_postgres: PrivatePostgres) -> None:  # type: ignore[no-untyped-def]
    buffer = 40
    client = make_client(
        f"prediction_log_url={private_postgres.url}",
        f"log_buffer_records={buffer}",
        "log_flush_interval_s=0.1",
        "log_stop_timeout_s=1",
    )

    def predict(request_id: str) -> float:
        started = time.perf_counter()
        response = client.post(PREDICT, json=PAYLOAD, headers={"x-request-id": request_id})
        assert response.status_code == 200, response.text
        return time.perf_counter() - started

    before = {f"up-{i}" for i in range(5)}
    for request_id in sorted(before):
        predict(request_id)
    assert before <= _wait_logged(private_postgres.url, before)

    private_postgres.stop()
    down = [f"down-{i}" for i in range(120)]
    latencies = [predict(request_id) for request_id in down]
    # Not slowed: the request path never waits on the database.
    assert float(np.percentile(latencies, 99)) < 0.5, sorted(latencies)[-5:]
    dropped = _dropped(client)
    assert dropped >= len(down) - buffer  # bounded buffer; the rest counted

    private_postgres.start()
    # The records buffered while the database was down are written first...
    held = {f"down-{i}" for i in range(buffer)}
    assert held <= _wait_logged(private_postgres.url, held), "the buffer was not written"
    # ...then new traffic is logged as before.
    after = {f"back-{i}" for i in range(5)}
    for request_id in sorted(after):
        predict(request_id)
    logged = _wait_logged(private_postgres.url, after)
    assert after <= logged, "writing did not resume after the database came back"
    written_while_down = {r for r in logged if r.startswith("down-")}
    assert written_while_down == held  # the oldest records kept, the newest dropped
    assert len(written_while_down) + _dropped(client) == len(down)  # all accounted for
