"""The shadow's bounded queue, in-process: what is dropped is counted before any work
is built for it, and what is queued runs in batches and is finished at shutdown."""

from __future__ import annotations

import asyncio
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
from modelyard.serve.shadow import SWITCH_INTERVAL_S, THREAD_NAME, ShadowThreads, ShadowWork

SPEC = object()


def _shadow(
    queue: int, rate: float = 1.0, log_url: str | None = None, log_records: int = 100_000
) -> tuple[ShadowThreads, ServerMetrics]:
    settings = ServeSettings(
        model="models:/digits@production",
        shadow="staging",
        shadow_rate=rate,
        shadow_queue=queue,
        shadow_nice=0,
        log_predictions=log_url is not None,
        prediction_log_url=log_url,
        log_buffer_records=log_records,
    )
    metrics = ServerMetrics()
    return ShadowThreads(settings, metrics, ServingMonitor(settings, metrics)), metrics


def _outcomes(metrics: ServerMetrics) -> dict[str, float]:
    found = {}
    for outcome in ("done", "dropped", "failed", "skipped", "unlogged", "log_full"):
        value = metrics.registry.get_sample_value(
            "modelyard_shadow_requests_total", {"outcome": outcome}
        )
        if value is not None:
            found[outcome] = value
    return found


def _loaded(shadow: ShadowThreads, calls: list[int]) -> None:
    """A loaded shadow whose model answers each row with its first pixel."""
    model: Any = SimpleNamespace(name="digits", version="2", spec=SPEC, role="shadow")
    shadow.runtime.current = model

    def infer(served: Any, inputs: np.ndarray) -> dict[str, np.ndarray]:
        assert served is model
        # the model runs on the shadow's own (niced) thread, never on the event loop
        assert threading.current_thread().name.startswith(f"{THREAD_NAME}_")
        calls.append(len(inputs))
        return {"probabilities": inputs.reshape(len(inputs), -1)[:, :1]}

    shadow._infer = infer  # type: ignore[method-assign]


def _work(n: int) -> ShadowWork:
    main: Any = SimpleNamespace(spec=SPEC)
    rows = np.full((1, 4), n, np.float32)

    def decode(model: Any) -> Batch:
        raise AssertionError("equal specs: the main model's decoded inputs are reused")

    return ShadowWork(f"r{n}", main, Batch(rows, rows), decode)


def test_a_full_queue_drops_and_counts_before_any_work_is_built() -> None:
    shadow, metrics = _shadow(queue=3)
    _loaded(shadow, [])
    taken = []
    for n in range(5):  # no worker runs: the queue fills at 3
        if shadow.admit():
            shadow.offer(_work(n))
            taken.append(n)
    assert taken == [0, 1, 2]
    assert len(shadow.pending) == 3
    assert _outcomes(metrics) == {"dropped": 2.0}


def test_offer_without_admit_still_respects_the_bound() -> None:
    shadow, metrics = _shadow(queue=1)
    _loaded(shadow, [])
    shadow.offer(_work(0))
    shadow.offer(_work(1))
    assert [work.request_id for work, _ in shadow.pending] == ["r0"]
    assert _outcomes(metrics) == {"dropped": 1.0}


def test_no_shadow_loaded_skips_and_a_zero_rate_mirrors_nothing() -> None:
    shadow, metrics = _shadow(queue=8)
    assert not shadow.admit()
    assert _outcomes(metrics) == {"skipped": 1.0}
    quiet, quiet_metrics = _shadow(queue=8, rate=0.0)
    _loaded(quiet, [])
    assert not any(quiet.admit() for _ in range(100))
    assert _outcomes(quiet_metrics) == {}


def test_with_a_log_only_answers_whose_rows_the_log_takes_are_mirrored(tmp_path: Any) -> None:
    """A shadow's answer is only recorded beside its main row: an answer the log did
    not take (sampled out, dropped) is not computed, and once the shadow's share of the
    log buffer is spoken for (the log fell behind) sampled answers are refused before
    any work, until the log catches up."""
    shadow, metrics = _shadow(queue=64, log_url=f"sqlite:///{tmp_path / 'log.db'}", log_records=8)
    _loaded(shadow, [])
    log = shadow.monitor.log
    assert log is not None and log.limit("shadow") == 6  # 3/4 of 8 records
    assert not shadow.admit(logged=False)
    assert _outcomes(metrics) == {"unlogged": 1.0}
    taken = 0
    for n in range(10):  # the log is not started: nothing is written, room runs out
        if shadow.admit(logged=True):
            shadow.offer(_work(n))
            taken += 1
    assert taken == 6  # the shadow's share, counting the work still pending
    assert _outcomes(metrics) == {"unlogged": 1.0, "log_full": 4.0}
    shadow.pending.clear()  # the work ran and its rows were written: room again
    assert shadow.admit(logged=True)


@pytest.mark.parametrize("count", [1, 40])
def test_queued_work_runs_in_batches_and_close_finishes_it(count: int) -> None:
    async def scenario() -> tuple[list[int], dict[str, float], int]:
        shadow, metrics = _shadow(queue=64)
        calls: list[int] = []
        _loaded(shadow, calls)
        await shadow.start()  # nothing to load: the stub above stays current
        for n in range(count):
            assert shadow.admit()
            shadow.offer(_work(n))
        await shadow.close()
        assert shadow._worker is not None and not shadow._worker.is_alive()  # stopped
        return calls, _outcomes(metrics), len(shadow.pending) + shadow.running

    async def start_optional() -> None:
        return None

    async def close() -> None:
        return None

    original = ShadowThreads.start

    async def start(self: ShadowThreads) -> None:
        self.runtime.start_optional = start_optional  # type: ignore[method-assign]
        self.runtime.close = close  # type: ignore[method-assign]
        await original(self)

    ShadowThreads.start = start  # type: ignore[method-assign]
    try:
        calls, outcomes, left = asyncio.run(scenario())
    finally:
        ShadowThreads.start = original  # type: ignore[method-assign]
    assert left == 0
    assert sum(calls) == count and max(calls) <= 32  # batches of at most max_batch_size
    assert len(calls) == -(-count // 32)  # queued together: as few model calls as fit
    assert outcomes == {"done": float(count)}


def test_a_shadow_in_threads_lowers_the_switch_interval() -> None:
    before = sys.getswitchinterval()
    shadow, _ = _shadow(queue=8)
    sys.setswitchinterval(0.005)
    try:
        shadow._start_worker()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    finally:
        sys.setswitchinterval(before)
        shadow._stopping = True
        shadow._wake.set()
        assert shadow._worker is not None
        shadow._worker.join(10)
