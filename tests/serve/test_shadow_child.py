"""The shadow's process, its side, without a registry: each batch the server sends is
computed and its rows queued for the log, or counted as what stopped it; what it
reports is one message per batch; its threads all run at ``shadow_nice``."""

from __future__ import annotations

import ast
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from tests.helpers import WRITE_LANE_PROBE

from modelyard.serve.settings import ServeSettings
from modelyard.serve.shadow_child import (
    ShadowBatch,
    ShadowModel,
    WriteLane,
    _Child,
    child_env,
    receive_batch,
    send_batch,
)

IMAGE_SPEC = {"kind": "image", "height": 2, "width": 2, "channels": 1, "mean": 0.0, "std": 1.0}


def _child(tmp_path: Path, log_records: int = 1_000) -> tuple[_Child, Any]:
    settings = ServeSettings(
        model="models:/digits@production",
        shadow="staging",
        prediction_log_url=f"sqlite:///{tmp_path / 'log.db'}",
        log_buffer_records=log_records,
    )
    replies, outbox = multiprocessing.Pipe(duplex=False)
    inbox, _ = multiprocessing.Pipe(duplex=False)
    return _Child(settings, inbox, outbox), replies


class _Session:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[int] = []

    def run(self, names: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.fail:
            raise RuntimeError("the shadow's graph refused")
        (inputs,) = feed.values()
        self.calls.append(len(inputs))
        first = inputs.reshape(len(inputs), -1)[:, :1]
        return [np.hstack([first, 1 - first])]


def _load(child: _Child, session: _Session) -> Any:
    model: Any = SimpleNamespace(
        name="digits", version="2", session=session, output_names=["probabilities"]
    )
    child.runtime.current = model
    return model


def _batch(sizes: list[int]) -> ShadowBatch:
    inputs = [np.full((n, 2, 2, 1), 0.25 * i, np.float32) for i, n in enumerate(sizes)]
    return ShadowBatch(
        [f"r{i}" for i in range(len(sizes))],
        sizes,
        np.concatenate(inputs),
        inputs,
        [None] * len(sizes),
    )


def test_a_batch_is_one_model_call_and_each_requests_rows_are_queued(tmp_path: Path) -> None:
    child, replies = _child(tmp_path)
    session = _Session()
    _load(child, session)
    queued: list[Any] = []
    child.monitor.observe_shadow = lambda model, rows, latency: queued.extend(rows)  # type: ignore[method-assign]
    child.run_batch(_batch([1, 3, 2]))
    assert session.calls == [6]  # one call for the whole batch
    assert [(request_id, len(seen)) for request_id, seen, *_ in queued] == [
        ("r0", 1),
        ("r1", 3),
        ("r2", 2),
    ]
    # each request gets its own rows of the outputs
    assert queued[1][2]["probabilities"][:, 0].tolist() == [0.25, 0.25, 0.25]
    assert all(shares is None for *_, shares, _ in queued)  # summarised here, not shared
    assert replies.recv() == ("outcomes", {"done": 3}, 3, 0)


@pytest.mark.parametrize(
    ("loaded", "fail", "log_records", "outcome"),
    [
        (False, False, 1_000, "skipped"),
        (True, True, 1_000, "failed"),
        (True, False, 4, "log_full"),  # 3/4 of 4 records for the shadow: no room for 6
    ],
)
def test_a_batch_that_cannot_run_is_counted_as_why(
    tmp_path: Path, loaded: bool, fail: bool, log_records: int, outcome: str
) -> None:
    child, replies = _child(tmp_path, log_records)
    session = _Session(fail)
    if loaded:
        _load(child, session)
    child.run_batch(_batch([1, 3, 2]))
    assert replies.recv() == ("outcomes", {outcome: 3}, 3, 0)
    assert session.calls == []  # nothing computed for rows the log would drop


def test_inputs_the_server_joined_are_split_per_request(tmp_path: Path) -> None:
    child, replies = _child(tmp_path)
    _load(child, _Session())
    queued: list[Any] = []
    child.monitor.observe_shadow = lambda model, rows, latency: queued.extend(rows)  # type: ignore[method-assign]
    batch = _batch([2, 1])
    batch.observed = np.concatenate(batch.observed)  # as ShadowProcess sends one dtype
    child.run_batch(batch)
    assert [seen[:, 0, 0, 0].tolist() for _, seen, *_ in queued] == [[0.0, 0.0], [0.25]]
    assert replies.recv()[1] == {"done": 2}


def _sent_and_received(batch: ShadowBatch) -> tuple[ShadowBatch, list[bytes]]:
    """``batch`` through a real pipe, and the raw messages that carried it."""
    inbox, outbox = multiprocessing.Pipe(duplex=False)
    sender = threading.Thread(target=lambda: [send_batch(outbox, batch) for _ in range(2)])
    sender.start()  # a batch may be more than a pipe holds
    received = receive_batch(inbox, inbox.recv())
    raw = [inbox.recv_bytes()]  # the second, as it travels
    while inbox.poll(1):
        raw.append(inbox.recv_bytes())
    sender.join(5)
    return received, raw


def test_float_images_travel_once_as_raw_bytes_and_arrive_writable() -> None:
    """Float inputs are what the log summarises too (``observed is model_input``):
    sent once, not pickled, and the child gets them back as writable arrays."""
    images = np.random.default_rng(0).random((128, 1, 28, 28), dtype=np.float32)
    received, raw = _sent_and_received(ShadowBatch(["a"] * 128, [1] * 128, images, images, []))
    np.testing.assert_array_equal(received.model_input, images)
    assert received.model_input.dtype == np.float32 and received.model_input.flags.writeable
    assert received.observed is received.model_input
    assert len(raw) == 2 and len(raw[0]) < 10_000  # a small header, then the bytes
    assert len(raw[1]) == images.nbytes


def test_pixels_texts_and_objects_arrive_as_they_were_sent() -> None:
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    inputs = (pixels / 255).astype(np.float32)
    received, raw = _sent_and_received(ShadowBatch(["a", "b"], [1, 1], inputs, pixels, [1, 2]))
    assert received.observed.dtype == np.uint8
    np.testing.assert_array_equal(received.observed, pixels)
    np.testing.assert_array_equal(received.model_input, inputs)
    assert (received.ids, received.counts, received.rules) == (["a", "b"], [1, 1], [1, 2])
    assert len(raw) == 3  # inputs and pixels each as their bytes
    ids = np.array([[3, 4, 0]], np.int64)
    received, _ = _sent_and_received(ShadowBatch(["t"], [1], ids, [["hej med dig"]], [None]))
    assert received.observed == [["hej med dig"]] and received.model_input.tolist() == [[3, 4, 0]]
    empty = np.zeros((2, 0), np.int64)  # texts with no tokens: no bytes, still a message
    received, raw = _sent_and_received(ShadowBatch(["e", "f"], [1, 1], empty, ["", ""], [None] * 2))
    assert received.model_input.shape == (2, 0) and received.observed == ["", ""]
    assert len(raw) == 2
    strings = np.array([["hej"]], dtype=object)  # a graph that takes strings: pickled
    received, raw = _sent_and_received(ShadowBatch(["s"], [1], strings, strings, [None]))
    assert received.model_input.tolist() == [["hej"]] and len(raw) == 1


def test_a_batch_whose_arrays_do_not_follow_stops_the_reading_unrun(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stream out of step (another message where a batch's bytes belonged) is never
    read as inputs: the process stops reading, and logs why."""
    child, replies = _child(tmp_path)
    session = _Session()
    _load(child, session)
    child.inbox, server = multiprocessing.Pipe(duplex=False)
    server.send(("batch", ["r0"], [3], [None], ("raw", "<f4", (3, 4)), ("same",)))
    server.send(("stop",))  # where its 48 bytes belonged
    server.send(("stop",))
    with caplog.at_level("ERROR", logger="modelyard.serve"):
        child.read()  # returns
    assert session.calls == [] and not replies.poll(0.1)
    assert "could not be read" in caplog.text


def test_the_loaded_version_is_told_once_per_change(tmp_path: Path) -> None:
    child, replies = _child(tmp_path)
    child.tell_model(first=True)
    assert replies.recv() == ("model", None)  # failed to load: the server skips
    model = _load(child, _Session())
    model.modality = SimpleNamespace(kind="image")
    model.spec = "spec-2"
    child.tell_model()
    child.tell_model()  # unchanged: nothing sent
    child.runtime.current = None
    child.tell_model()
    assert replies.recv() == ("model", ShadowModel("digits", "2", "image", "spec-2"))
    assert replies.recv() == ("model", None)
    assert not replies.poll(0.1)


def test_a_shadow_model_pickles_without_its_modality() -> None:
    shown = ShadowModel("digits", "2", "image", IMAGE_SPEC)
    copy = pickle.loads(pickle.dumps(shown))
    assert copy == shown and copy.modality.kind == "image"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc only")
def test_lower_priority_renices_the_threads_that_exist_and_those_made_later() -> None:
    script = """
import os, threading, time
from modelyard.serve.shadow_child import lower_priority
stop = threading.Event()
early = threading.Thread(target=stop.wait)
early.start()
lower_priority(os.getpriority(os.PRIO_PROCESS, 0) + 5)
late = threading.Thread(target=stop.wait)
late.start()
print(sorted({int(open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()[16])
              for t in os.listdir("/proc/self/task")}))
stop.set()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert done.stdout.strip() == f"[{min(19, base + 5)}]"


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies only")
def test_idle_puts_every_thread_under_sched_idle_those_made_later_too() -> None:
    script = """
import os, threading
from modelyard.serve.shadow_child import lower_priority
stop = threading.Event()
early = threading.Thread(target=stop.wait)
early.start()
made = lower_priority(os.getpriority(os.PRIO_PROCESS, 0), idle=True)
late = threading.Thread(target=stop.wait)
late.start()
print(made, sorted({os.sched_getscheduler(int(t)) for t in os.listdir("/proc/self/task")}))
stop.set()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == f"True [{os.SCHED_IDLE}]"


UNPRIVILEGED = ["setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice"]
"""A command prefix that runs without CAP_SYS_NICE, as the container image's user does."""


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies only")
def test_a_thread_that_ends_while_the_rest_go_idle_is_not_taken_for_a_refusal() -> None:
    # A thread listed in /proc that is gone by the time its policy is set (a joined
    # thread's OS thread outlives Python's join by a moment) made every later thread
    # keep the server's scheduling, and the process log "SCHED_IDLE refused".
    script = """
import os, threading
from modelyard.serve.shadow_child import lower_priority
real = os.sched_setscheduler
gone = []
def ended_first(thread_id, policy, param):
    if not gone:
        gone.append(thread_id)
        raise ProcessLookupError(3, "No such process")
    real(thread_id, policy, param)
os.sched_setscheduler = ended_first
stop = threading.Event()
for _ in range(3):
    threading.Thread(target=stop.wait).start()
made = lower_priority(os.getpriority(os.PRIO_PROCESS, 0), idle=True)
tasks = [int(t) for t in os.listdir("/proc/self/task") if int(t) not in gone]
print(made, sorted({os.sched_getscheduler(t) for t in tasks}))
stop.set()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == f"True [{os.SCHED_IDLE}]"


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies only")
@pytest.mark.parametrize("privileged", [True, False], ids=["as-is", "without-CAP_SYS_NICE"])
def test_the_write_lane_keeps_the_servers_priority_while_every_other_thread_goes_idle(
    privileged: bool,
) -> None:
    # No privilege needed (a container's user has no CAP_SYS_NICE): the lane's thread
    # never leaves the server's scheduling, so nothing has to be lifted back.
    if not privileged and shutil.which(UNPRIVILEGED[0]) is None:
        pytest.fail("setpriv (util-linux) is needed to run this test without CAP_SYS_NICE")
    script = WRITE_LANE_PROBE
    prefix = [] if privileged else UNPRIVILEGED
    done = subprocess.run(
        [*prefix, sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    could_lift, base, made, during, caller, later, raised = ast.literal_eval(done.stdout.strip())
    if not privileged:
        assert not could_lift  # the per-write lift this replaced would be refused here
    assert made  # every other thread idle, those made later too
    assert caller == (os.SCHED_IDLE, 19) and later == os.SCHED_IDLE
    assert during == [(os.SCHED_OTHER, base)]  # the write ran at the server's priority
    assert raised == "refused"  # the write's error reaches the log thread


@pytest.mark.parametrize("sqlite", [True, False], ids=["sqlite", "postgresql"])
def test_the_childs_sqlite_log_writes_through_the_lane(tmp_path: Path, sqlite: bool) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}" if sqlite else "postgresql://nobody@127.0.0.1:1/x"
    settings = ServeSettings(
        model="models:/digits@production", shadow="staging", prediction_log_url=url
    )
    _replies, outbox = multiprocessing.Pipe(duplex=False)
    inbox, _ = multiprocessing.Pipe(duplex=False)
    lane = WriteLane()
    try:
        child = _Child(settings, inbox, outbox, lane)
        assert child.monitor.log is not None
        # PostgreSQL's concurrent inserts wait on no lock a preempted writer could hold
        assert child.monitor.log.write_through is (lane if sqlite else None)
    finally:
        lane.close()


def test_the_child_is_started_without_the_workers_metrics_folder() -> None:
    environ = {"PATH": "/bin", "PROMETHEUS_MULTIPROC_DIR": "/m", "prometheus_multiproc_dir": "/m"}
    assert child_env(environ) == {"PATH": "/bin"}
