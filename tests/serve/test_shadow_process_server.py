"""The server's side of a shadow in its own process, without the process: the bound
counts what is sent and not yet reported back, a batch is one message, and the
child's reports become this server's metrics."""

from __future__ import annotations

import multiprocessing
import sys
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from modelyard.modality import Batch
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.monitoring import ServingMonitor
from modelyard.serve.settings import ServeSettings
from modelyard.serve.shadow import ShadowWork
from modelyard.serve.shadow_child import ShadowModel, receive_batch
from modelyard.serve.shadow_process import MESSAGE_BATCHES, ShadowProcess, _joined

SPEC = {"kind": "image", "height": 2, "width": 2, "channels": 1, "mean": 0.0, "std": 1.0}


def _shadow(queue: int = 8) -> tuple[ShadowProcess, ServerMetrics]:
    settings = ServeSettings(
        model="models:/digits@production",
        shadow="staging",
        shadow_queue=queue,
        log_predictions=False,
    )
    metrics = ServerMetrics()
    return ShadowProcess(settings, metrics, ServingMonitor(settings, metrics)), metrics


def _value(metrics: ServerMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


def _work(n: int, spec: Any = SPEC) -> ShadowWork:
    rows = np.full((n, 4), n, np.float32)

    def decode(model: Any) -> Batch:
        assert model.spec != spec  # only when the shadow reads inputs differently
        again = np.full((n, 4), -n, np.float32)
        return Batch(again, again)

    return ShadowWork(f"r{n}", SimpleNamespace(spec=spec), Batch(rows, rows), decode)  # type: ignore[arg-type]


def test_no_work_before_the_child_reports_a_loaded_version() -> None:
    shadow, metrics = _shadow()
    assert not shadow.admit()
    assert _value(metrics, "modelyard_shadow_requests_total", {"outcome": "skipped"}) == 1


def test_requests_sent_and_not_reported_back_count_against_the_bound() -> None:
    shadow, metrics = _shadow(queue=4)
    shadow.model = ShadowModel("digits", "2", "image", SPEC)
    shadow.in_flight = 3  # the child has not answered them: it is behind
    assert shadow.admit()
    shadow.offer(_work(1))
    assert not shadow.admit()  # 3 in flight + 1 queued
    shadow.offer(_work(2))  # offered anyway: still dropped
    assert len(shadow.pending) == 1
    assert _value(metrics, "modelyard_shadow_requests_total", {"outcome": "dropped"}) == 2


def test_a_batch_is_one_message_and_a_different_spec_decodes_afresh() -> None:
    shadow, _ = _shadow()
    shadow.model = ShadowModel("digits", "2", "image", SPEC)
    inbox, shadow._outbox = multiprocessing.Pipe(duplex=False)
    shadow._run([(_work(1), None), (_work(2), None), (_work(3, spec="other"), None)])
    header = inbox.recv()
    batch = receive_batch(inbox, header)
    assert header[0] == "batch"
    assert (batch.ids, batch.counts, batch.rules) == (["r1", "r2", "r3"], [1, 2, 3], [None] * 3)
    assert batch.model_input[:, 0].tolist() == [1, 2, 2, -3, -3, -3]  # the third decoded afresh
    assert batch.observed is batch.model_input  # float inputs are what the log sees: sent once
    assert not inbox.poll(0.1)  # one message for the three
    assert shadow.in_flight == 3


def test_a_batch_that_cannot_be_sent_gives_its_place_in_the_bound_back() -> None:
    shadow, _ = _shadow()
    shadow.model = ShadowModel("digits", "2", "image", SPEC)
    _inbox, shadow._outbox = multiprocessing.Pipe(duplex=False)
    work = _work(1)
    work.rule = lambda: None  # type: ignore[assignment]  # nothing pickles a lambda
    with pytest.raises(Exception, match="pickle"):
        shadow._run([(work, None)])  # _work counts it as failed
    assert shadow.in_flight == 0  # else, leak by leak, the bound would drop everything


def test_observed_inputs_of_different_types_go_as_they_are() -> None:
    texts = ["a", "b"]
    pixels = np.zeros((1, 4), np.uint8)
    floats = np.zeros((2, 4), np.float32)
    assert _joined([texts, ["c"]]) == [texts, ["c"]]
    assert [len(one) for one in _joined([pixels, floats])] == [1, 2]  # not upcast
    assert _joined([pixels, pixels]).shape == (2, 4)


def test_reports_become_metrics_and_a_gone_child_takes_no_more_work() -> None:
    shadow, metrics = _shadow()
    replies, child_end = multiprocessing.Pipe(duplex=False)
    reader = threading.Thread(target=shadow._read, args=(replies,))
    reader.start()
    shadow.in_flight = 5
    child_end.send(("model", ShadowModel("digits", "2", "image", SPEC)))
    child_end.send(("outcomes", {"done": 3}, 3, 0))
    child_end.send(("outcomes", {"log_full": 2}, 2, 7))
    child_end.send(("closed", 1))
    child_end.close()  # the child is gone
    reader.join(5)
    assert not reader.is_alive()
    assert shadow.in_flight == 0
    outcomes = {
        outcome: _value(metrics, "modelyard_shadow_requests_total", {"outcome": outcome})
        for outcome in ("done", "log_full")
    }
    assert outcomes == {"done": 3, "log_full": 2}
    assert _value(metrics, "modelyard_prediction_log_dropped_total") == 8
    assert _value(metrics, "modelyard_prediction_log_shadow_dropped_total") == 8
    assert _value(metrics, "modelyard_shadow_info", {"model": "digits", "version": "2"}) == 1
    assert shadow.model is None and not shadow.admit()  # skipped from now on


def test_a_message_carries_several_main_batches() -> None:
    """What queued goes in as few messages as fit MESSAGE_BATCHES main batches each
    (the server pays per message: a wake-up, a pickle, a report to read), not one
    message per ``max_batch_size`` requests, and never more than ``shadow_queue``."""
    settings = ServeSettings(
        model="models:/digits@production",
        shadow="staging",
        shadow_queue=512,
        max_batch_size=8,
        log_predictions=False,
    )
    metrics = ServerMetrics()
    shadow = ShadowProcess(settings, metrics, ServingMonitor(settings, metrics))
    assert shadow.max_rows == MESSAGE_BATCHES * 8
    assert _shadow(queue=4)[0].max_rows == 4  # the bound caps a message too
    shadow.model = ShadowModel("digits", "2", "image", SPEC)
    inbox, shadow._outbox = multiprocessing.Pipe(duplex=False)
    for _ in range(100):
        shadow.offer(_work(1))
    worker = threading.Thread(target=shadow._work, daemon=True)
    worker.start()
    sizes = [len(receive_batch(inbox, inbox.recv()).ids) for _ in range(4)]
    shadow._stopping = True
    shadow._wake.set()
    worker.join(5)
    assert sizes == [32, 32, 32, 4]
    assert not inbox.poll(0.1) and shadow.in_flight == 100


def test_the_switch_interval_is_left_as_it_is() -> None:
    """Only a shadow in threads of the server lowers it (SWITCH_INTERVAL_S)."""
    before = sys.getswitchinterval()
    shadow, _ = _shadow()
    shadow._start_worker()
    try:
        assert sys.getswitchinterval() == before
    finally:
        shadow._stopping = True
        shadow._wake.set()
        assert shadow._worker is not None
        shadow._worker.join(10)
