"""The server's side of a shadow in its own process, without the process: the bound
counts what is sent and not yet reported back, a batch is one message, and the
child's reports become this server's metrics."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from modelyard.modality import Batch
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.monitoring import ServingMonitor
from modelyard.serve.settings import ServeSettings
from modelyard.serve.shadow import THREAD_NAME, ShadowWork
from modelyard.serve.shadow_child import ShadowBatch, ShadowModel, receive_batch
from modelyard.serve.shadow_process import MESSAGE_BATCHES, ShadowProcess, _joined

SPEC = {"kind": "image", "height": 2, "width": 2, "channels": 1, "mean": 0.0, "std": 1.0}


def _shadow(queue: int = 8, loaded: bool = False) -> tuple[ShadowProcess, ServerMetrics]:
    """A shadow's server side (``loaded``: as if the child had reported a version)."""
    settings = ServeSettings(
        model="models:/digits@production",
        shadow="staging",
        shadow_queue=queue,
        log_predictions=False,
    )
    metrics = ServerMetrics()
    shadow = ShadowProcess(settings, metrics, ServingMonitor(settings, metrics))
    if loaded:
        shadow.model = ShadowModel("digits", "2", "image", SPEC)
    return shadow, metrics


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
    shadow, metrics = _shadow(queue=4, loaded=True)
    shadow.in_flight = 3  # the child has not answered them: it is behind
    assert shadow.admit()
    shadow.offer(_work(1))
    assert not shadow.admit()  # 3 in flight + 1 queued
    shadow.offer(_work(2))  # offered anyway: still dropped
    assert len(shadow.pending) == 1
    assert _value(metrics, "modelyard_shadow_requests_total", {"outcome": "dropped"}) == 2


class _Child:
    """The child's ends of the two pipes, as the child holds them (Connection)."""

    def __init__(self, shadow: ShadowProcess) -> None:
        inbox, to_child = os.pipe()
        from_child, outbox = os.pipe()
        shadow.attach(asyncio.get_running_loop(), to_child, from_child)
        self.inbox = Connection(inbox, writable=False)
        self.outbox = Connection(outbox, readable=False)

    def batch(self) -> ShadowBatch:
        return receive_batch(self.inbox, self.inbox.recv())


def test_a_batch_is_one_message_and_a_different_spec_decodes_afresh() -> None:
    async def main() -> None:
        shadow, _ = _shadow(loaded=True)
        child = _Child(shadow)
        shadow._run([(_work(1), None), (_work(2), None), (_work(3, spec="other"), None)])
        header = child.inbox.recv()
        batch = receive_batch(child.inbox, header)
        assert header[0] == "batch"
        assert (batch.ids, batch.counts, batch.rules) == (["r1", "r2", "r3"], [1, 2, 3], [None] * 3)
        assert batch.model_input[:, 0].tolist() == [1, 2, 2, -3, -3, -3]  # the third afresh
        assert batch.observed is batch.model_input  # float inputs are what the log sees: once
        assert not child.inbox.poll(0.1)  # one message for the three
        assert shadow.in_flight == 3

    asyncio.run(main())


def test_a_batch_that_cannot_be_sent_gives_its_place_in_the_bound_back() -> None:
    async def main() -> None:
        shadow, _ = _shadow(loaded=True)
        child = _Child(shadow)
        work = _work(1)
        work.rule = lambda: None  # type: ignore[assignment]  # nothing pickles a lambda
        with pytest.raises(Exception, match="pickle"):
            shadow._run([(work, None)])  # _send counts it as failed
        assert shadow.in_flight == 0  # else, leak by leak, the bound would drop everything
        assert not child.inbox.poll(0.1)  # and nothing of it went down the pipe

    asyncio.run(main())


def test_observed_inputs_of_different_types_go_as_they_are() -> None:
    texts = ["a", "b"]
    pixels = np.zeros((1, 4), np.uint8)
    floats = np.zeros((2, 4), np.float32)
    assert _joined([texts, ["c"]]) == [texts, ["c"]]
    assert [len(one) for one in _joined([pixels, floats])] == [1, 2]  # not upcast
    assert _joined([pixels, pixels]).shape == (2, 4)


def test_reports_become_metrics_and_a_gone_child_takes_no_more_work() -> None:
    async def main() -> None:
        shadow, metrics = _shadow()
        child = _Child(shadow)
        shadow.in_flight = 5
        child.outbox.send(("model", ShadowModel("digits", "2", "image", SPEC)))
        child.outbox.send(("outcomes", {"done": 3}, 3, 0))
        child.outbox.send(("outcomes", {"log_full": 2}, 2, 7))
        child.outbox.send(("closed", 1))
        child.outbox.close()  # the child is gone
        assert shadow._gone is not None
        await asyncio.wait_for(shadow._gone, 5)
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

    asyncio.run(main())


def test_a_message_carries_several_main_batches_and_the_rest_lingers() -> None:
    """What queued goes in as few messages as fit MESSAGE_BATCHES main batches each
    (the server pays per message: a timer, a header, a report to read), not one
    message per ``max_batch_size`` requests, and never more than ``shadow_queue``; a
    message that is not full waits ``linger_s`` for more."""

    async def main() -> None:
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
        shadow.linger_s = 0.3
        child = _Child(shadow)
        for _ in range(100):
            shadow.offer(_work(1))
        assert not child.inbox.poll(0)  # nothing written while the answer is being made
        await asyncio.sleep(0.05)
        sizes = [len(child.batch().ids) for _ in range(3)]
        assert sizes == [32, 32, 32] and len(shadow.pending) == 4
        assert not child.inbox.poll(0)  # the last four linger
        await asyncio.sleep(0.4)
        assert len(child.batch().ids) == 4
        assert not child.inbox.poll(0.1) and shadow.in_flight == 100

    asyncio.run(main())


def test_a_full_pipe_never_blocks_the_event_loop_and_loses_nothing_once_it_drains() -> None:
    """A child that stops reading (SCHED_IDLE, at saturation) fills the pipe: the event
    loop goes on (a blocking write would stall every client), the bound drops what
    does not fit, and what was queued arrives whole and in order when it reads again."""

    async def main() -> None:
        shadow, metrics = _shadow(queue=64, loaded=True)
        shadow.max_rows = 16
        shadow.linger_s = 0.001
        child = _Child(shadow)
        big = np.ones((1, 8192), np.float32)  # 32 KiB a request: the 64 KiB pipe fills
        for n in range(200):
            if shadow.admit():
                shadow.offer(ShadowWork(f"r{n}", SimpleNamespace(spec=SPEC), Batch(big, big), None))  # type: ignore[arg-type]
            await asyncio.sleep(0.001)  # the loop's other work (answers) goes on meanwhile
        assert shadow._writer is not None and shadow._writer.waiting
        dropped = _value(metrics, "modelyard_shadow_requests_total", {"outcome": "dropped"})
        assert dropped > 0 and shadow.in_flight + len(shadow.pending) == 64

        received: list[str] = []

        def read() -> None:  # the child reads again
            while len(received) < 64:
                received.extend(child.batch().ids)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + 10
        while reader.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert [int(one[1:]) for one in received] == sorted(int(one[1:]) for one in received)
        assert len(received) == 64 and dropped + 64 == 200 and not shadow.pending

    asyncio.run(main())


def test_requests_the_child_will_never_read_are_counted_as_failed() -> None:
    async def main() -> None:
        shadow, metrics = _shadow(loaded=True)
        child = _Child(shadow)
        child.inbox.close()  # the child is gone: the pipe breaks at the next write
        shadow.offer(_work(1))
        shadow.offer(_work(2))
        shadow._send()
        assert _value(metrics, "modelyard_shadow_requests_total", {"outcome": "failed"}) == 2
        assert shadow.in_flight == 0

    asyncio.run(main())


def test_requests_a_child_read_and_never_reported_are_failed_when_it_dies() -> None:
    """A child killed (or out of memory) after reading a batch never reports it: those
    requests leave the bound and are counted failed, not left in no outcome."""

    async def main() -> None:
        shadow, metrics = _shadow(loaded=True)
        child = _Child(shadow)
        shadow.offer(_work(1))
        shadow.offer(_work(2))
        shadow._send()
        assert child.batch().ids == ["r1", "r2"]  # read whole
        assert shadow.in_flight == 2
        child.outbox.send(("outcomes", {"done": 1}, 1, 0))  # one reported, then it dies
        child.inbox.close()
        child.outbox.close()
        assert shadow._gone is not None
        await asyncio.wait_for(shadow._gone, 5)
        assert shadow.in_flight == 0
        assert _value(metrics, "modelyard_shadow_requests_total", {"outcome": "done"}) == 1
        assert _value(metrics, "modelyard_shadow_requests_total", {"outcome": "failed"}) == 1
        await shadow.close(timeout_s=0.1)
        assert _value(metrics, "modelyard_shadow_requests_total", {"outcome": "failed"}) == 1

    asyncio.run(main())


def test_the_server_runs_no_shadow_thread_and_leaves_the_switch_interval() -> None:
    """Only a shadow in threads of the server lowers it (SWITCH_INTERVAL_S); this one
    sends and reads on the event loop."""

    async def main() -> None:
        before = sys.getswitchinterval()
        shadow, _ = _shadow(loaded=True)
        child = _Child(shadow)
        shadow.offer(_work(1))
        await asyncio.sleep(0.1)
        assert child.batch().ids == ["r1"]
        assert sys.getswitchinterval() == before
        assert not [one for one in threading.enumerate() if one.name.startswith(THREAD_NAME)]

    asyncio.run(main())


async def _full_pipe(queue: int = 64) -> tuple[ShadowProcess, ServerMetrics, _Child]:
    """A shadow whose child stopped reading: a message cut short in the full pipe, the
    rest queued behind it."""
    shadow, metrics = _shadow(queue=queue, loaded=True)
    shadow.max_rows = 16
    shadow.linger_s = 0.001
    child = _Child(shadow)
    big = np.ones((1, 8192), np.float32)  # 32 KiB a request: the 64 KiB pipe fills
    for n in range(queue):
        shadow.offer(ShadowWork(f"r{n}", SimpleNamespace(spec=SPEC), Batch(big, big), None))  # type: ignore[arg-type]
        await asyncio.sleep(0.001)
    assert shadow._writer is not None and shadow._writer.waiting and shadow.pending
    return shadow, metrics, child


def test_a_child_that_dies_behind_a_full_pipe_leaves_no_request_uncounted() -> None:
    """What queued here while the pipe was full is never sent once the child is gone:
    it is counted (as the threads' worker counted it, skipped), not left in the queue."""

    async def main(reports_end_first: bool) -> None:
        shadow, metrics, child = await _full_pipe()
        queued = len(shadow.pending)
        ends = [child.outbox, child.inbox] if reports_end_first else [child.inbox, child.outbox]
        for end in ends:  # the child dies: either end may be seen first
            end.close()
        assert shadow._gone is not None
        await asyncio.wait_for(shadow._gone, 5)
        await asyncio.sleep(0.05)
        assert not shadow.pending
        assert _value(metrics, "modelyard_shadow_requests_total", {"outcome": "skipped"}) == queued
        await shadow.close(timeout_s=0.1)
        # Every request offered is in exactly one outcome (those in the pipe's writer
        # and those the child had read are failed), none twice, and none is left over.
        counted = sum(
            _value(metrics, "modelyard_shadow_requests_total", {"outcome": outcome})
            for outcome in ("done", "failed", "skipped", "dropped")
        )
        assert counted == 64
        assert shadow.in_flight == 0

    asyncio.run(main(reports_end_first=True))
    asyncio.run(main(reports_end_first=False))


def test_a_message_cut_short_at_close_is_counted_as_failed() -> None:
    async def main() -> None:
        shadow, metrics, child = await _full_pipe()
        assert shadow._writer is not None
        unsent, in_flight = shadow._writer.unsent_requests, shadow.in_flight
        await shadow.close(timeout_s=0.1)  # the child never reads again: no stop, EOF
        assert unsent > 0 and shadow.in_flight == in_flight - unsent
        assert _value(metrics, "modelyard_shadow_requests_total", {"outcome": "failed"}) == unsent
        child.inbox.close()
        child.outbox.close()

    asyncio.run(main())
