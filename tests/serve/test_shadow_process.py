"""Shadow traffic on real server processes and the real prediction log (SQLite and
PostgreSQL): a shadow slower than the main model never slows or fails the main
path and drops what it cannot keep up with; both predictions of a request share its
id in the log; a shadow that fails to load leaves the main model serving and is
hot-reloaded once its alias moves; bad shadow settings are one line, exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.helpers import Server, free_port, run_cli
from tests.serve.conftest import Versions
from tests.serve.versions import set_alias

from modelyard.monitor.logstore import create_log_engine, predictions
from modelyard.serve.shadow_child import WRITE_THREAD_NAME

pytestmark = pytest.mark.slow

BODY = {"instances": [[[3] * 8] * 8]}


def _logged_rows(log_url: str) -> list[sa.Row[Any]]:
    """Every logged row's version, request id and label."""
    engine = create_log_engine(log_url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    sa.select(predictions.c.version, predictions.c.request_id, predictions.c.label)
                ).all()
            )
    finally:
        engine.dispose()


def _counter(url: str, name: str) -> dict[str, float]:
    found = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + "{"):
            found[line.split('"')[1]] = float(line.split()[-1])
    return found


def _shadow_shown(url: str, version: str) -> bool:
    """Whether the server reports ``version`` loaded as its shadow."""
    return any(
        line.startswith("modelyard_shadow_info{") and f'version="{version}"' in line
        and float(line.split()[-1]) == 1.0
        for line in httpx.get(f"{url}/metrics").text.splitlines()
    )  # fmt: skip


def _load(url: str, n: int, results: list[tuple[int, str, float]]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(n):
            begin = time.perf_counter()
            answer = client.post("/v1/models/digits-cnn:predict", json=BODY)
            results.append(
                (
                    answer.status_code,
                    answer.json().get("model_version", ""),
                    time.perf_counter() - begin,
                )
            )


def _threads(pid: int, but: str = "", only: str = "") -> list[Path]:
    """The /proc folders of process ``pid``'s threads whose name starts with ``only``,
    less those whose name starts with ``but``."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    names = {task: (task / "comm").read_text() for task in tasks}
    return [
        task
        for task, name in names.items()
        if name.startswith(only) and not (but and name.startswith(but))
    ]


def _thread_nice_values(pid: int, but: str = "", only: str = "") -> list[int]:
    """The nice value of each thread of process ``pid`` (Linux /proc)."""
    values = []
    for task in _threads(pid, but, only):
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        values.append(int(fields[16]))  # field 19 of stat; fields here start at field 3
    return values


def _children(pid: int) -> list[int]:
    found = []
    for listed in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in listed.read_text().split()]
    return found


def _shadow_processes(pid: int) -> list[int]:
    """The processes under process ``pid`` (its children, or with --workers its
    workers' children) named as the shadow's (Linux /proc)."""
    found = _children(pid)
    found += [grandchild for child in found for grandchild in _children(child)]
    return [c for c in found if Path(f"/proc/{c}/comm").read_text().startswith("modelyard-shad")]


def _thread_policies(pid: int, but: str = "", only: str = "") -> set[int]:
    """The scheduling policy of each thread of process ``pid`` (Linux)."""
    return {os.sched_getscheduler(int(task.name)) for task in _threads(pid, but, only)}


@pytest.mark.parametrize("own_process", [True, False], ids=["process", "threads"])
def test_a_slow_shadow_never_holds_up_the_main_path(
    versions: Versions, log_url: str, own_process: bool
) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)  # the server's, unless the test runs niced
    # a thread at 19 got ~nothing done here; 10 above the server, unless it runs niced
    thread_nice = 10 if base < 10 else 19
    server = Server(
        "digits-cnn@production",
        "shadow=staging",
        "shadow_rate=1.0",
        "shadow_queue=8",
        "poll_interval_s=0",
        f"shadow_process={str(own_process).lower()}",
        f"shadow_nice={19 if own_process else thread_nice}",
        f"prediction_log_url={log_url}",
    )
    results: list[tuple[int, str, float]] = []
    try:
        threads = [
            threading.Thread(target=_load, args=(server.url, 100, results)) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # At nice 19 the shadow's process gets the CPU the main path leaves idle: under
        # the load above (on a busy machine) possibly none, so its queued work may only
        # finish once the load has stopped.
        deadline = time.monotonic() + 30
        shadow = _counter(server.url, "modelyard_shadow_requests_total")
        while not shadow.get("done") and time.monotonic() < deadline:
            time.sleep(0.2)
            shadow = _counter(server.url, "modelyard_shadow_requests_total")
        info = httpx.get(f"{server.url}/metrics").text
        niced = _thread_nice_values(server.process.pid)
        children = _shadow_processes(server.process.pid)
        # its log's transactions run on one thread kept at the server's priority (WriteLane)
        shadow_niced = [n for c in children for n in _thread_nice_values(c, WRITE_THREAD_NAME)]
        policies = {policy for c in children for policy in _thread_policies(c, WRITE_THREAD_NAME)}
        lane_niced = [n for c in children for n in _thread_nice_values(c, only=WRITE_THREAD_NAME)]
        lane_policies = {p for c in children for p in _thread_policies(c, only=WRITE_THREAD_NAME)}
    finally:
        assert server.stop() == 0  # graceful: the queued shadow work is logged first
    if own_process:  # every thread of the shadow's process idle (and at nice 19), no other
        assert shadow_niced and set(shadow_niced) == {19}, shadow_niced
        assert policies == {os.SCHED_IDLE}, policies
        assert lane_niced == [base] * len(children) and lane_policies == {os.SCHED_OTHER}
        assert set(niced) == {base}, niced
    else:  # the shadow's model thread alone
        assert niced.count(thread_nice) == 1 and niced.count(base) == len(niced) - 1, niced
    assert {(status, version) for status, version, _ in results} == {(200, "1")}
    assert 'modelyard_shadow_info{model="digits-cnn",version="2"} 1.0' in info
    # the shadow is far slower: it could not keep up, dropped (and counted) the rest
    assert shadow.get("dropped", 0) > 0 and shadow.get("done", 0) > 0, shadow
    # the rest was queued (at most 8) or in the running shadow batch when the metrics
    # were read: the worker takes one, lingers while up to 8 more queue, takes those
    assert 400 - 17 <= shadow["done"] + shadow["dropped"] <= 400
    rows = _logged_rows(log_url)
    main = {r.request_id: r.label for r in rows if r.version == "1"}
    shadowed = {r.request_id: r.label for r in rows if r.version == "2"}
    assert len(main) == 400
    # every shadow prediction that ran is logged, under the id of a main prediction
    # (the ones still queued at the stop are finished first), with the same answer
    assert set(shadowed) <= set(main)
    assert len(shadowed) >= shadow["done"]
    assert all(main[i] == label for i, label in shadowed.items())


def _ask(url: str, request_id: str) -> int:
    """One request on a fresh connection, so it may land on either worker."""
    answer = httpx.post(
        f"{url}/v1/models/digits-cnn:predict",
        json=BODY,
        headers={"x-request-id": request_id},
        timeout=30,
    )
    return answer.status_code


def test_two_workers_each_shadow_what_they_answer(versions: Versions, tmp_path: Path) -> None:
    """Every worker process loads the shadow and logs its predictions beside its own
    main ones: each shadow row pairs with a main row of the same id, and summarises
    its inputs like a main row, so drift can be checked on the shadow's version."""
    log_url = f"sqlite:///{tmp_path / 'log.db'}"
    server = Server(
        "digits-cnn@production",
        "--workers",
        "2",
        "shadow=challenger",
        "shadow_rate=1.0",
        "shadow_queue=512",
        "poll_interval_s=0",
        f"prediction_log_url={log_url}",
    )
    ids = [f"w{n}" for n in range(120)]
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda i: _ask(server.url, i), ids))
        shadow = _counter(server.url, "modelyard_shadow_requests_total")  # both workers'
        # the workers share a metrics folder; their shadows' processes do not see it
        environs = [Path(f"/proc/{c}/environ").read_bytes().split(b"\0") for c in
                    _shadow_processes(server.process.pid)]  # fmt: skip
    finally:
        assert server.stop() == 0
    assert set(statuses) == {200}
    assert len(environs) == 2
    assert not [v for e in environs for v in e if v.upper().startswith(b"PROMETHEUS_MULTIPROC")]
    rows = _logged_rows(log_url)
    main = {r.request_id: r.label for r in rows if r.version == "1"}
    shadowed = {r.request_id: r.label for r in rows if r.version == "4"}
    assert set(main) == set(ids)
    # (the server's log, with both shadow processes' lines, says why if not)
    assert shadow.get("dropped", 0) + len(shadowed) == len(ids), (shadow, server.log_tail())
    assert shadowed and set(shadowed) <= set(main)
    assert all(main[i] == label for i, label in shadowed.items())  # v4 is a copy of v1
    # shadow rows summarise their inputs like main rows: drift runs the same checks
    checked = {}
    for version in ("1", "4"):
        done = run_cli(
            "monitor", "drift", f"models:/digits-cnn/{version}", "--since", "1h", "--json",
            "--db", log_url, timeout=120,
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stderr  # 1: drift (one image, sent 120 times)
        verdict = json.loads(done.stdout)
        assert verdict["window"]["records"] == (len(main) if version == "1" else len(shadowed))
        checked[version] = sorted(check["name"] for check in verdict["checks"])
    assert checked["4"] == checked["1"]
    assert any(name not in ("labels", "confidence", "embedding") for name in checked["4"])


def test_a_shadow_that_fails_to_load_leaves_the_main_model_serving(versions: Versions) -> None:
    server = Server(
        "digits-cnn@production",
        "shadow=broken",
        "shadow_rate=1.0",
        "poll_interval_s=0.3",
    )
    try:
        for _ in range(20):
            answer = httpx.post(f"{server.url}/v1/models/digits-cnn:predict", json=BODY)
            assert answer.status_code == 200 and answer.json()["model_version"] == "1"
        assert _counter(server.url, "modelyard_shadow_requests_total") == {"skipped": 20.0}
        assert "shadow models:/digits-cnn@broken not loaded" in server.log.read_text()
        # the alias moves to a version that loads: the shadow follows it
        set_alias("broken", "2")
        deadline = time.monotonic() + 30  # until the server knows (the shadow's process
        while time.monotonic() < deadline and not _shadow_shown(server.url, "2"):  # swaps,
            time.sleep(0.2)  # then tells it; a request before that is skipped)
        for _ in range(5):
            assert httpx.post(f"{server.url}/v1/models/digits-cnn:predict", json=BODY).is_success
        deadline = time.monotonic() + 30  # the shadow runs at nice 19: on a busy
        done = 0.0  # machine its answers may come well after the main ones
        while done < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
            done = _counter(server.url, "modelyard_shadow_requests_total").get("done", 0)
    finally:
        set_alias("broken", "3")
        assert server.stop() == 0
    assert "shadow: swapped digits-cnn version None -> 2" in server.log.read_text()
    assert done == 5


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        (["shadow=nightly"], "serve setting shadow=nightly"),
        (["shadow=staging", "shadow_rate=1.5"], "shadow_rate must be within 0..1"),
        (["shadow=a/b"], "bad serve setting shadow=a/b"),
        (["canary=staging", "canary_weight=-0.1"], "canary_weight must be within 0..1"),
        (["shadow=staging", "canary=staging"], "shadow=staging and canary=staging name one alias"),
    ],
)
def test_bad_shadow_settings_are_one_line(
    versions: Versions, settings: list[str], words: str
) -> None:
    done = run_cli("serve", "digits-cnn@production", "poll_interval_s=0", *settings, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "group-term"])
def test_a_stop_sent_to_the_whole_process_group_loses_no_shadow_row(
    versions: Versions, tmp_path: Path, stop: signal.Signals
) -> None:
    """Ctrl-C in a terminal (SIGINT) and systemd's default stop (SIGTERM to every
    process of the unit) reach the shadow's process too, not only the server: the
    shadow must still write every row it took before the server stops it."""
    log_url = f"sqlite:///{tmp_path / 'log.db'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    output = tmp_path / "server.log"
    command = [str(Path(sys.executable).with_name("modelyard")), "serve", "digits-cnn@production"]
    command += ["--port", str(port), "shadow=staging", "shadow_rate=1.0", "shadow_queue=512"]
    command += ["poll_interval_s=0", f"prediction_log_url={log_url}"]
    process = subprocess.Popen(
        command,
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a group of its own, as a terminal's job or a unit has
    )
    try:
        deadline = time.monotonic() + 120
        while not _ready(url):
            assert process.poll() is None and time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(60):
                answer = client.post("/v1/models/digits-cnn:predict", json=BODY)
                assert answer.status_code == 200
        refused = _counter(url, "modelyard_shadow_requests_total")
        os.killpg(process.pid, stop)  # at once: shadow work is still queued or computing
        assert process.wait(timeout=60) == 0, output.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    taken = 60 - sum(n for outcome, n in refused.items() if outcome != "done")
    rows = _logged_rows(log_url)
    assert len([r for r in rows if r.version == "1"]) == 60
    assert len([r for r in rows if r.version == "2"]) == taken, output.read_text()[-2000:]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
