"""DynamicBatcher: every caller gets exactly its rows, batches fire for the right reason."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import pytest

from modelyard.serve.batcher import BatcherClosed, BatchStats, DynamicBatcher, QueueFull

T = TypeVar("T")


class FakeModel:
    """A stand-in for ``session.run``: doubles its input and records every batch."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[np.ndarray] = []
        self.threads: set[str] = set()

    def __call__(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        self.batches.append(inputs.copy())
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        if (inputs < 0).any():
            raise ValueError("boom: negative input")
        return {"y": inputs * 2, "sum": inputs.sum(axis=1, keepdims=True)}

    @property
    def sizes(self) -> list[int]:
        return [len(batch) for batch in self.batches]

    def saw(self, rows: np.ndarray) -> bool:
        """Whether any batch contained these exact rows (values are unique per request)."""
        return any(np.isin(rows[:, 0], batch[:, 0]).any() for batch in self.batches)


def rows(request_id: int, n: int, width: int = 3, dtype: Any = np.float32) -> np.ndarray:
    """``n`` rows whose values are unique to ``request_id``, so mix-ups show."""
    base = 1000.0 * (request_id + 1) + np.arange(n * width).reshape(n, width)
    return base.astype(dtype)


def check(inputs: np.ndarray, result: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(result["y"], inputs * 2)
    np.testing.assert_array_equal(result["sum"], inputs.sum(axis=1, keepdims=True))


def run(main: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run`` that also fails on errors the loop only logs (e.g. InvalidStateError)."""
    errors: list[dict[str, Any]] = []

    async def wrapper() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: errors.append(ctx))
        return await main()

    result = asyncio.run(wrapper())
    assert not errors, errors
    return result


def test_concurrent_requests_get_exactly_their_rows() -> None:
    model = FakeModel()
    requests = [rows(i, 1 + i % 5) for i in range(40)]

    async def main() -> list[dict[str, np.ndarray]]:
        batcher = DynamicBatcher(model, max_batch_size=8, max_delay=0.005)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(x) for x in requests))
        await batcher.close()
        return list(results)

    for inputs, result in zip(requests, run(main), strict=True):
        check(inputs, result)
    assert max(model.sizes) <= 8
    assert sum(model.sizes) == sum(len(x) for x in requests)
    assert len(model.batches) < len(requests)  # requests really were merged
    assert model.threads == {next(iter(model.threads))}  # one serialised worker thread


def test_full_trigger_fires_without_waiting_for_delay() -> None:
    model, stats = FakeModel(), list[BatchStats]()

    async def main() -> float:
        batcher = DynamicBatcher(model, max_batch_size=4, max_delay=5.0, on_batch=stats.append)
        await batcher.start()
        begin = time.perf_counter()
        await asyncio.gather(*(batcher.submit(rows(i, 1)) for i in range(8)))
        elapsed = time.perf_counter() - begin
        await batcher.close()
        return elapsed

    assert run(main) < 2.0  # far below max_delay
    assert [s.trigger for s in stats] == ["full", "full"]
    assert model.sizes == [4, 4]


def test_next_request_that_does_not_fit_makes_the_batch_full() -> None:
    model, stats = FakeModel(), list[BatchStats]()

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=4, max_delay=5.0, on_batch=stats.append)
        await batcher.start()
        tasks = [asyncio.ensure_future(batcher.submit(rows(i, n))) for i, n in [(0, 3), (1, 2)]]
        await asyncio.sleep(0.01)
        await batcher.close()  # the 2-row request would otherwise wait max_delay
        for (i, n), task in zip([(0, 3), (1, 2)], tasks, strict=True):
            check(rows(i, n), task.result())

    run(main)
    assert model.sizes == [3, 2]  # never split, FIFO
    assert [s.trigger for s in stats] == ["full", "drain"]


def test_lone_request_fires_after_max_delay() -> None:
    model, stats = FakeModel(), list[BatchStats]()

    async def main() -> float:
        batcher = DynamicBatcher(model, max_batch_size=32, max_delay=0.05, on_batch=stats.append)
        await batcher.start()
        begin = time.perf_counter()
        check(rows(0, 2), await batcher.submit(rows(0, 2)))
        elapsed = time.perf_counter() - begin
        await batcher.close()
        return elapsed

    assert 0.04 <= run(main) < 3.0
    assert [s.trigger for s in stats] == ["timeout"]
    assert stats[0].queue_seconds[0] >= 0.04


def test_oversize_request_runs_alone() -> None:
    model, stats = FakeModel(), list[BatchStats]()
    requests = [rows(0, 1), rows(1, 10), rows(2, 2), rows(3, 1)]

    async def main() -> list[dict[str, np.ndarray]]:
        batcher = DynamicBatcher(model, max_batch_size=4, max_delay=0.01, on_batch=stats.append)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(x) for x in requests))
        await batcher.close()
        return list(results)

    for inputs, result in zip(requests, run(main), strict=True):
        check(inputs, result)
    assert model.sizes == [1, 10, 3]
    oversize = next(s for s in stats if s.size == 10)
    assert (oversize.requests, oversize.trigger) == (1, "full")


def test_failing_batch_fails_only_its_requests() -> None:
    model = FakeModel()

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=2, max_delay=1.0)
        await batcher.start()
        bad, good_neighbour = await asyncio.gather(
            batcher.submit(-rows(0, 1)), batcher.submit(rows(1, 1)), return_exceptions=True
        )
        assert isinstance(bad, ValueError) and "boom" in str(bad)
        assert isinstance(good_neighbour, ValueError)  # same batch, same fate
        after = await asyncio.gather(batcher.submit(rows(2, 1)), batcher.submit(rows(3, 1)))
        check(rows(2, 1), after[0])
        await batcher.close()

    run(main)
    assert model.sizes == [2, 2]


def test_bad_run_batch_output_fails_the_batch_with_a_clear_error() -> None:
    async def main() -> None:
        batcher = DynamicBatcher(lambda x: {"y": x[:1]}, max_delay=0.0)
        await batcher.start()
        with pytest.raises(ValueError, match="expected 3 rows"):
            await batcher.submit(rows(0, 3))
        await batcher.close()

    run(main)


def test_cancelled_queued_request_is_never_computed() -> None:
    model = FakeModel(delay=0.2)
    first, cancelled, later = rows(0, 1), rows(1, 2), rows(2, 1)

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=8, max_delay=0.0)
        await batcher.start()
        busy = asyncio.ensure_future(batcher.submit(first))
        await asyncio.sleep(0.02)  # `first` now occupies the only worker
        waiting = asyncio.ensure_future(batcher.submit(later))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(batcher.submit(cancelled), timeout=0.02)
        assert batcher.pending_rows == 1
        check(first, await busy)
        check(later, await waiting)
        await batcher.close()

    run(main)
    assert model.sizes == [1, 1]
    assert not model.saw(cancelled)


def test_cancel_while_computing_drops_the_result_safely() -> None:
    model = FakeModel(delay=0.08)

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=8, max_delay=0.0)
        await batcher.start()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(batcher.submit(rows(0, 2)), timeout=0.02)
        check(rows(1, 1), await batcher.submit(rows(1, 1)))
        await batcher.close()

    run(main)  # fails on any InvalidStateError the loop logged
    assert model.sizes == [2, 1]


def test_next_batch_forms_while_one_computes() -> None:
    model = FakeModel(delay=0.2)

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=8, max_delay=0.0)
        await batcher.start()
        busy = asyncio.ensure_future(batcher.submit(rows(0, 1)))
        await asyncio.sleep(0.02)
        queued = [asyncio.ensure_future(batcher.submit(rows(i, 1))) for i in range(1, 4)]
        await asyncio.sleep(0.01)
        assert batcher.pending_rows == 3  # accepted while the worker is busy
        await asyncio.gather(busy, *queued)
        await batcher.close()

    run(main)
    assert model.sizes == [1, 3]  # one batch of what arrived meanwhile, not three


def test_close_with_drain_finishes_queued_requests() -> None:
    model, stats = FakeModel(delay=0.02), list[BatchStats]()
    requests = [rows(i, 2) for i in range(3)]

    async def main() -> float:
        batcher = DynamicBatcher(model, max_batch_size=4, max_delay=10.0, on_batch=stats.append)
        await batcher.start()
        tasks = [asyncio.ensure_future(batcher.submit(x)) for x in requests]
        await asyncio.sleep(0.01)
        begin = time.perf_counter()
        await batcher.close(drain=True)
        elapsed = time.perf_counter() - begin
        assert all(task.done() for task in tasks)  # close returns after delivery
        for inputs, task in zip(requests, tasks, strict=True):
            check(inputs, task.result())
        with pytest.raises(BatcherClosed):
            await batcher.submit(rows(9, 1))
        await batcher.close()  # idempotent
        return elapsed

    assert run(main) < 5.0  # did not wait for max_delay
    assert model.sizes == [4, 2]
    assert [s.trigger for s in stats] == ["full", "drain"]


def test_close_without_drain_fails_queued_but_finishes_in_flight() -> None:
    model = FakeModel(delay=0.2)
    first, queued = rows(0, 1), [rows(1, 1), rows(2, 2)]

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=8, max_delay=0.0)
        await batcher.start()
        busy = asyncio.ensure_future(batcher.submit(first))
        await asyncio.sleep(0.02)
        tasks = [asyncio.ensure_future(batcher.submit(x)) for x in queued]
        await asyncio.sleep(0.01)
        await batcher.close(drain=False)
        check(first, await busy)
        for task in tasks:
            with pytest.raises(BatcherClosed):
                await task
        assert batcher.pending_rows == 0

    run(main)
    assert model.sizes == [1]


def test_queue_full_when_max_queue_rows_exceeded() -> None:
    async def main() -> None:
        batcher = DynamicBatcher(FakeModel(), max_batch_size=32, max_delay=10.0, max_queue_rows=5)
        await batcher.start()
        tasks = [asyncio.ensure_future(batcher.submit(rows(i, n))) for i, n in [(0, 3), (1, 2)]]
        await asyncio.sleep(0)
        assert batcher.pending_rows == 5
        with pytest.raises(QueueFull):
            await batcher.submit(rows(2, 1))
        await batcher.close()
        assert all(task.done() and task.exception() is None for task in tasks)

        # An empty queue takes even an oversize request: it could never run otherwise.
        batcher = DynamicBatcher(FakeModel(), max_delay=0.0, max_queue_rows=5)
        await batcher.start()
        check(rows(3, 8), await batcher.submit(rows(3, 8)))
        await batcher.close()

    run(main)


def test_mixed_trailing_shapes_and_dtypes_go_to_separate_batches() -> None:
    model = FakeModel()
    requests = [rows(0, 2), rows(1, 2, width=4), rows(2, 1), rows(3, 1, dtype=np.float64)]

    async def main() -> list[dict[str, np.ndarray]]:
        batcher = DynamicBatcher(model, max_batch_size=8, max_delay=0.01)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(x) for x in requests))
        await batcher.close()
        return list(results)

    for inputs, result in zip(requests, run(main), strict=True):
        check(inputs, result)
        assert result["y"].dtype == inputs.dtype
    shapes = [(b.shape, b.dtype) for b in model.batches]
    # The oldest request leads; the odd ones keep their order and lead later batches.
    assert shapes == [((3, 3), np.float32), ((2, 4), np.float32), ((1, 3), np.float64)]


def test_on_batch_stats_and_failing_callback(caplog: pytest.LogCaptureFixture) -> None:
    stats: list[BatchStats] = []

    def on_batch(batch: BatchStats) -> None:
        stats.append(batch)
        raise RuntimeError("metrics backend down")

    async def main() -> None:
        batcher = DynamicBatcher(
            FakeModel(delay=0.005), max_batch_size=4, max_delay=0.01, on_batch=on_batch
        )
        await batcher.start()
        await asyncio.gather(*(batcher.submit(rows(i, 1 + i % 2)) for i in range(6)))
        check(rows(9, 1), await batcher.submit(rows(9, 1)))  # still serving
        await batcher.close()

    with caplog.at_level(logging.ERROR, logger="modelyard.serve.batcher"):
        run(main)
    assert sum(s.size for s in stats) == 3 * 1 + 3 * 2 + 1
    for s in stats:
        assert len(s.queue_seconds) == s.requests
        assert all(q >= 0 for q in s.queue_seconds)
        assert s.compute_seconds > 0
        assert s.trigger in {"full", "timeout", "drain"}
    assert "on_batch callback failed" in caplog.text


def test_invalid_use_is_reported() -> None:
    async def main() -> None:
        batcher = DynamicBatcher(FakeModel())
        with pytest.raises(RuntimeError, match="start"):
            await batcher.submit(rows(0, 1))
        await batcher.start()
        with pytest.raises(ValueError, match="rows"):
            await batcher.submit(np.zeros((0, 3), np.float32))
        with pytest.raises(ValueError, match="batch axis"):
            await batcher.submit(np.float32(1.0))  # type: ignore[arg-type]
        await batcher.close()

    run(main)
    with pytest.raises(ValueError, match="max_batch_size"):
        DynamicBatcher(FakeModel(), max_batch_size=0)


def test_stress_many_concurrent_requests() -> None:
    model = FakeModel()
    generator = np.random.default_rng(0)
    requests = [rows(i, int(n)) for i, n in enumerate(generator.integers(1, 8, size=200))]

    async def main() -> list[dict[str, np.ndarray]]:
        batcher = DynamicBatcher(model, max_batch_size=16, max_delay=0.001)
        await batcher.start()

        async def client(i: int) -> dict[str, np.ndarray]:
            await asyncio.sleep(float(generator.uniform(0, 0.02)))  # staggered arrivals
            return await batcher.submit(requests[i])

        results = await asyncio.gather(*(client(i) for i in range(len(requests))))
        await batcher.close()
        return list(results)

    for inputs, result in zip(requests, run(main), strict=True):
        check(inputs, result)
    assert max(model.sizes) <= 16
    assert sum(model.sizes) == sum(len(x) for x in requests)


def test_serving_path_does_not_import_torch() -> None:
    code = "import sys, modelyard.serve.batcher; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_submit_timeout_drops_queued_rows_and_computing_results() -> None:
    model = FakeModel(delay=0.2)
    first, expired, later = rows(0, 1), rows(1, 2), rows(2, 1)

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=8, max_delay=0.0)
        await batcher.start()
        busy = asyncio.ensure_future(batcher.submit(first, timeout=0.05))
        await asyncio.sleep(0.02)  # `first` computes for 0.2 s: it will time out there
        waiting = asyncio.ensure_future(batcher.submit(later))
        with pytest.raises(asyncio.TimeoutError):
            await batcher.submit(expired, timeout=0.02)  # times out while queued
        assert batcher.pending_rows == 1
        with pytest.raises(asyncio.TimeoutError):
            await busy
        check(later, await waiting)
        await batcher.close()

    run(main)  # fails on any InvalidStateError from delivering to an expired request
    assert model.sizes == [1, 1]
    assert not model.saw(expired)


def test_two_workers_compute_two_batches_at_once() -> None:
    model = FakeModel(delay=0.2)

    async def main() -> float:
        batcher = DynamicBatcher(model, max_batch_size=1, max_delay=0.0, workers=2)
        await batcher.start()
        started = time.perf_counter()
        results = await asyncio.gather(*(batcher.submit(rows(i, 1)) for i in range(2)))
        elapsed = time.perf_counter() - started
        for i, result in enumerate(results):
            check(rows(i, 1), result)
        await batcher.close()
        return elapsed

    assert run(main) < 0.35  # serialised it would take 0.4 s
    assert len(model.threads) == 2
    with pytest.raises(ValueError, match="workers"):
        DynamicBatcher(model, workers=0)


def test_a_lone_request_on_an_idle_batcher_runs_inline_on_the_loop() -> None:
    model, stats = FakeModel(), []
    company = {"others": False}

    async def main() -> None:
        batcher = DynamicBatcher(
            model,
            max_delay=0.0,
            on_batch=stats.append,
            inline=True,
            alone=lambda: not company["others"],
        )
        await batcher.start()
        lone = rows(0, 2)
        check(lone, await batcher.submit(lone))
        assert model.threads == {threading.current_thread().name}  # the loop's thread
        company["others"] = True  # another request is in the server: batch as usual
        check(rows(1, 1), await batcher.submit(rows(1, 1)))
        company["others"] = False
        bad = rows(2, 1) * -1  # a failing model call reaches the caller, inline too
        with pytest.raises(ValueError, match="boom"):
            await batcher.submit(bad)
        await batcher.close()

    run(main)
    assert [s.trigger for s in stats] == ["inline", "timeout", "inline"]
    assert stats[0].size == 2 and stats[0].queue_seconds == [0.0]
    assert len(model.threads) == 2  # the second request went to the batcher's thread


def test_concurrent_requests_are_batched_not_inlined() -> None:
    model, stats = FakeModel(delay=0.01), []
    active = {"requests": 0}  # what the server's middleware counts

    async def main() -> None:
        batcher = DynamicBatcher(
            model,
            max_delay=0.0,
            on_batch=stats.append,
            inline=True,
            alone=lambda: active["requests"] <= 1,
        )
        await batcher.start()

        async def request(inputs: np.ndarray) -> dict[str, np.ndarray]:
            active["requests"] += 1
            try:
                await asyncio.sleep(0)  # parsing: every request is in before any submits
                return await batcher.submit(inputs)
            finally:
                active["requests"] -= 1

        requests = [rows(i, 1) for i in range(6)]
        results = await asyncio.gather(*(request(r) for r in requests))
        for inputs, result in zip(requests, results, strict=True):
            check(inputs, result)
        check(rows(9, 1), await request(rows(9, 1)))  # alone again: inline
        await batcher.close()

    run(main)
    assert [s.trigger for s in stats[:-1]] == ["timeout"] * (len(stats) - 1)
    assert max(s.size for s in stats) > 1 and stats[-1].trigger == "inline"


def test_a_request_that_yields_while_the_batcher_closes_is_refused_not_stranded() -> None:
    model = FakeModel()

    async def main() -> None:
        batcher = DynamicBatcher(model, max_delay=0.0, inline=True, alone=lambda: True)
        await batcher.start()
        pending = asyncio.create_task(batcher.submit(rows(0, 1)))
        await asyncio.sleep(0)  # the request is now yielding before it runs inline
        await batcher.close()
        with pytest.raises(BatcherClosed):
            await asyncio.wait_for(pending, 5)

    run(main)
    assert model.batches == []


def test_inline_batches_compute_on_the_loop_and_still_batch_concurrent_requests() -> None:
    model, stats = FakeModel(), []

    async def main() -> None:
        batcher = DynamicBatcher(model, max_delay=0.0, on_batch=stats.append, inline_batches=True)
        await batcher.start()
        requests = [rows(i, 1 + i % 2) for i in range(7)]
        results = await asyncio.gather(*(batcher.submit(r) for r in requests))
        for inputs, result in zip(requests, results, strict=True):
            check(inputs, result)
        with pytest.raises(ValueError, match="boom"):  # a failing call reaches its caller
            await batcher.submit(rows(99, 1) * -1)
        check(rows(100, 2), await batcher.submit(rows(100, 2)))  # and batching goes on
        await batcher.close()

    run(main)
    assert model.threads == {threading.current_thread().name}  # never the batcher's thread
    assert max(s.size for s in stats) > 1  # queued requests still merge
    assert sum(s.size for s in stats) == sum(model.sizes) == 13


def test_inline_batches_need_a_zero_delay() -> None:
    model = FakeModel()
    assert not DynamicBatcher(model, max_delay=0.002, inline_batches=True).inline_batches
    assert DynamicBatcher(model, max_delay=0.0, inline_batches=True).inline_batches
