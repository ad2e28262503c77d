"""Dynamic batching: merge concurrent requests into one model call, like Triton does.

Callers ``await submit(rows)`` from request handlers; a background task on the event
loop groups queued requests into batches and runs each through the synchronous
``run_batch`` (an ONNX Runtime ``session.run``) in an executor, so the loop keeps
accepting requests while the model computes. Only numpy and the standard library are
imported here: the serving path must not pull in torch.

Batch formation, in order of precedence:

* The oldest queued request always leads the next batch (no starvation). Its trailing
  shape and dtype decide which other requests may join: later requests that differ
  keep their place in the queue and lead a later batch, so one odd request cannot fail
  or stall everyone else.
* Compatible requests join in FIFO order until the next one would overflow
  ``max_batch_size``; requests are never split. A single request larger than
  ``max_batch_size`` runs alone (the server enforces its own per-request limit).
* A batch fires when it cannot grow any more ("full"), when its oldest request has
  waited ``max_delay`` ("timeout"), or at once while closing ("drain").
* A request that finds the batcher idle (nothing queued or computing, no delay
  configured) and that ``alone()`` says has no company in the server runs at once
  on the event loop, when ``inline`` is on ("inline"): no batch could form, and two
  thread hand-offs cost more than a cheap model call.
* A batch is only formed when the executor has a free worker. While one batch
  computes, requests keep queueing and the next batch is cut from everything that
  arrived meanwhile, so batches grow with load instead of piling up small ones.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["BatchStats", "BatcherClosed", "DynamicBatcher", "QueueFull"]

logger = logging.getLogger(__name__)

RunBatch = Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class BatchStats:
    """What happened to one fired batch; handed to ``on_batch`` for metrics."""

    size: int
    """Rows in the batch that reached ``run_batch``."""
    requests: int
    """Requests merged into it."""
    trigger: str
    """``"full"``, ``"timeout"``, ``"drain"`` (fired early because the batcher is closing)
    or ``"inline"`` (a lone request computed on the event loop)."""
    queue_seconds: list[float]
    """Per request, in batch order: time from ``submit`` to the batch being formed."""
    compute_seconds: float
    """Time inside ``run_batch`` (measured on the executor thread)."""


class BatcherClosed(RuntimeError):
    """The batcher is closed (or closing) and takes no new requests."""


class QueueFull(RuntimeError):
    """Accepting the request would exceed ``max_queue_rows``; the client should retry later."""


@dataclass(eq=False)  # identity equality: deque.remove must not compare numpy arrays
class _Request:
    inputs: np.ndarray
    future: asyncio.Future[dict[str, np.ndarray]]
    submitted: float = field(default_factory=time.perf_counter)
    queued: bool = True

    @property
    def rows(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def key(self) -> tuple[tuple[int, ...], np.dtype[np.generic]]:
        return self.inputs.shape[1:], self.inputs.dtype


@dataclass(frozen=True)
class _Outcome:
    outputs: dict[str, np.ndarray] | None
    error: Exception | None
    seconds: float


class DynamicBatcher:
    """Queue requests of ``(n, ...)`` rows and answer each from a shared model call.

    ``run_batch`` receives the concatenated rows and must return arrays whose first
    axis has one entry per input row; each caller gets views of exactly its own rows.
    The default executor is a private pool of ``workers`` threads (one: model calls
    are serialised); with a caller's ``ThreadPoolExecutor`` up to its worker count of
    batches run at once.
    """

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        max_batch_size: int = 32,
        max_delay: float = 0.002,
        max_queue_rows: int = 4096,
        on_batch: Callable[[BatchStats], None] | None = None,
        executor: concurrent.futures.Executor | None = None,
        workers: int = 1,
        inline: bool = False,
        alone: Callable[[], bool] | None = None,
        inline_batches: bool = False,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_delay < 0:
            raise ValueError(f"max_delay must be >= 0 seconds, got {max_delay}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if max_queue_rows < 1:
            raise ValueError(f"max_queue_rows must be at least 1, got {max_queue_rows}")
        self._run_batch = run_batch
        self.inline = inline and max_delay == 0
        """Whether a lone request on an idle batcher computes on the event loop (never
        with a ``max_delay``: the caller asked requests to wait for company)."""
        self._alone = alone
        self.inline_batches = inline_batches and max_delay == 0
        """Whether every batch computes on the event loop instead of the executor (a
        model so cheap that the thread hand-off costs more than the call)."""
        self.max_batch_size = max_batch_size
        self.max_delay = max_delay
        self.max_queue_rows = max_queue_rows
        self._on_batch = on_batch
        self._owns_executor = executor is None
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="modelyard-batcher"
        )
        # Executor has no public size; ThreadPoolExecutor's has been stable forever.
        self._max_inflight = max(1, int(getattr(self._executor, "_max_workers", 1)))
        self._queue: deque[_Request] = deque()
        self._queued_rows = 0
        self._inflight = 0
        self._closed = False
        self._wakeup = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._computing: set[asyncio.Task[None]] = set()

    @property
    def executor(self) -> concurrent.futures.Executor:
        """Where batches are computed (a caller may set up its threads through it)."""
        return self._executor

    @property
    def pending_rows(self) -> int:
        """Rows queued and not yet handed to ``run_batch`` (what ``max_queue_rows`` bounds)."""
        return self._queued_rows

    async def start(self) -> None:
        """Start the background batching task on the running event loop."""
        if self._closed:
            raise BatcherClosed("this batcher was closed; create a new one")
        if self._runner is not None:
            raise RuntimeError("the batcher is already started")
        self._runner = asyncio.get_running_loop().create_task(self._run())

    async def submit(
        self, inputs: np.ndarray, timeout: float | None = None
    ) -> dict[str, np.ndarray]:
        """Queue ``inputs`` (``n`` rows) and return every output sliced to those ``n`` rows.

        With ``timeout`` (seconds) a request not answered in time raises
        :class:`asyncio.TimeoutError`; if it is still queued its rows never reach the
        model (as if the caller had been cancelled), if it is computing its result is
        dropped.

        Raises :class:`BatcherClosed` once closing has begun and :class:`QueueFull` when
        the queue holds too many rows; a request is admitted into an empty queue even
        if it alone exceeds ``max_queue_rows``, since it could otherwise never run.
        ``run_batch``'s exception propagates to every request of the failing batch.
        Cancelling the caller while queued removes its rows before they are computed.
        """
        if self._closed:
            raise BatcherClosed("the server is shutting down; retry on another replica")
        if self._runner is None:
            raise RuntimeError("call `await batcher.start()` before submitting requests")
        if inputs.ndim == 0 or inputs.shape[0] == 0:
            raise ValueError(f"inputs need a leading batch axis with rows, got {inputs.shape}")
        rows = int(inputs.shape[0])
        if self._can_inline():
            # Let requests that arrived with this one reach the server first: the
            # handler may not have yielded since its bytes arrived, so "alone" is only
            # believable after one turn of the loop.
            await asyncio.sleep(0)
            if self._closed:  # closing began meanwhile: the runner may be gone
                raise BatcherClosed("the server is shutting down; retry on another replica")
            if self._can_inline():
                return self._compute_inline(inputs)
        if self._queue and self._queued_rows + rows > self.max_queue_rows:
            raise QueueFull(
                f"{self._queued_rows} rows already queued (limit {self.max_queue_rows}); "
                "retry later"
            )
        request = _Request(inputs, asyncio.get_running_loop().create_future())
        self._queue.append(request)
        self._queued_rows += rows
        self._wakeup.set()
        timer = None
        if timeout is not None:
            timer = asyncio.get_running_loop().call_later(timeout, self._expire, request)
        try:
            return await request.future
        except asyncio.CancelledError:
            # Cancelled while queued: its rows must never reach the model. Cancelled
            # while computing: nothing to undo, the result is dropped on delivery.
            self._dequeue(request)
            self._wakeup.set()  # the oldest request, and so the deadline, may change
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _can_inline(self) -> bool:
        return (
            self.inline
            and not self._queue
            and self._inflight == 0
            and (self._alone is None or self._alone())
        )

    def _compute_inline(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run a lone request's rows now, on the calling (event-loop) thread."""
        outcome = self._compute([inputs])
        self._report(BatchStats(len(inputs), 1, "inline", [0.0], outcome.seconds))
        if outcome.outputs is None:
            raise outcome.error or RuntimeError("run_batch failed")
        return outcome.outputs

    def _expire(self, request: _Request) -> None:
        if request.future.done():
            return
        self._dequeue(request)
        request.future.set_exception(asyncio.TimeoutError())
        self._wakeup.set()

    async def close(self, drain: bool = True) -> None:
        """Stop taking requests, then finish queued work (``drain``) or fail it.

        With ``drain`` queued requests fire at once without waiting for ``max_delay``.
        Without it they fail with :class:`BatcherClosed`. Either way batches already
        in the executor finish and deliver, so ``run_batch`` is idle when this returns
        (a runtime may then free its session). Safe to call more than once.
        """
        self._closed = True
        if not drain:
            self._fail_queued(BatcherClosed("the batcher closed before this request ran"))
        self._wakeup.set()
        waiting = [task for task in (self._runner, *self._computing) if task is not None]
        # Shielded: a caller giving up on a graceful close (wait_for with a grace period)
        # must not cancel the batching task halfway; it can call close(drain=False).
        await asyncio.shield(asyncio.gather(*waiting, return_exceptions=True))
        while self._computing:  # batches the runner fired while draining
            await asyncio.shield(asyncio.gather(*self._computing, return_exceptions=True))
        if self._owns_executor:
            self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        try:
            while (batch := await self._next_batch()) is not None:
                requests, trigger = batch
                if self.inline_batches:
                    self._execute_inline(requests, trigger)
                    continue
                self._inflight += 1
                task = asyncio.get_running_loop().create_task(self._execute(requests, trigger))
                self._computing.add(task)
                task.add_done_callback(self._computing.discard)
        except asyncio.CancelledError:
            self._fail_queued(BatcherClosed("the batcher was cancelled"))
            raise
        except Exception as exc:  # a bug here must not leave callers waiting forever
            logger.exception("dynamic batcher stopped")
            self._closed = True
            self._fail_queued(exc)

    async def _next_batch(self) -> tuple[list[_Request], str] | None:
        """Wait until a batch should fire and take it off the queue; ``None`` when done."""
        while True:
            # A cancelled caller dequeues itself only when its task next runs; until
            # then _select skips it, but it must not lead a batch either.
            while self._queue and self._queue[0].future.done():
                self._dequeue(self._queue[0])
            if not self._queue:
                if self._closed:
                    return None
                await self._sleep(None)
                continue
            requests, full = self._select()
            if not full and not self._closed:
                remaining = self._queue[0].submitted + self.max_delay - time.perf_counter()
                if remaining > 0:
                    await self._sleep(remaining)
                    continue  # re-check: arrivals may fill it, cancellations may empty it
            if self._inflight >= self._max_inflight:
                await self._sleep(None)  # a finished batch wakes us; re-cut what queued
                continue
            for request in requests:
                request.queued = False
                self._queued_rows -= request.rows
            self._queue = deque(request for request in self._queue if request.queued)
            trigger = "full" if full else "drain" if self._closed else "timeout"
            return requests, trigger

    def _select(self) -> tuple[list[_Request], bool]:
        """The next batch in queue order, and whether it is full (cannot grow further)."""
        head = self._queue[0]
        chosen, rows = [head], head.rows
        for request in self._queue:
            if rows >= self.max_batch_size:
                break
            if request is head or request.key != head.key or request.future.done():
                continue
            if rows + request.rows > self.max_batch_size:
                return chosen, True  # FIFO: smaller later requests do not jump ahead
            chosen.append(request)
            rows += request.rows
        return chosen, rows >= self.max_batch_size

    def _execute_inline(self, requests: list[_Request], trigger: str) -> None:
        """Compute a batch on the event loop (a cheap model: no thread hand-off)."""
        started = time.perf_counter()
        queue_seconds = [started - request.submitted for request in requests]
        outcome = self._compute([request.inputs for request in requests])
        self._deliver(requests, outcome)
        self._report(
            BatchStats(
                sum(r.rows for r in requests),
                len(requests),
                trigger,
                queue_seconds,
                outcome.seconds,
            )
        )

    def _deliver(self, requests: list[_Request], outcome: _Outcome) -> int:
        start = 0
        for request in requests:
            stop = start + request.rows
            if request.future.done():  # caller cancelled while computing
                pass
            elif outcome.outputs is None:
                request.future.set_exception(outcome.error or RuntimeError("run_batch failed"))
            else:
                request.future.set_result(
                    {name: array[start:stop] for name, array in outcome.outputs.items()}
                )
            start = stop
        return start

    async def _execute(self, requests: list[_Request], trigger: str) -> None:
        started = time.perf_counter()
        queue_seconds = [started - request.submitted for request in requests]
        parts = [request.inputs for request in requests]
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(self._executor, self._compute, parts)
        except Exception as exc:  # e.g. a caller's executor already shut down
            outcome = _Outcome(None, exc, 0.0)
        finally:
            self._inflight -= 1
            self._wakeup.set()
        start = self._deliver(requests, outcome)
        self._report(BatchStats(start, len(requests), trigger, queue_seconds, outcome.seconds))

    def _report(self, stats: BatchStats) -> None:
        if self._on_batch is None:
            return
        try:
            self._on_batch(stats)
        except Exception:
            logger.exception("on_batch callback failed; batching continues")

    def _compute(self, parts: list[np.ndarray]) -> _Outcome:
        """Runs on the executor thread: concatenating there keeps big copies off the loop."""
        seconds = 0.0
        try:
            inputs = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
            begin = time.perf_counter()
            try:
                outputs = self._run_batch(inputs)
            finally:
                seconds = time.perf_counter() - begin
            if not isinstance(outputs, dict):
                raise TypeError(f"run_batch must return a dict of arrays, got {type(outputs)}")
            for name, array in outputs.items():
                if np.ndim(array) == 0 or len(array) != len(inputs):
                    raise ValueError(
                        f"run_batch output {name!r} has shape {np.shape(array)}; "
                        f"expected {len(inputs)} rows first"
                    )
        except Exception as exc:
            return _Outcome(None, exc, seconds)
        return _Outcome(outputs, None, seconds)

    async def _sleep(self, timeout: float | None) -> None:
        """Wait for a submit, cancellation, finished batch or close, or ``timeout``."""
        # No await between the caller's checks and this clear, so no wakeup is lost.
        self._wakeup.clear()
        timer = None
        if timeout is not None:
            timer = asyncio.get_running_loop().call_later(timeout, self._wakeup.set)
        try:
            await self._wakeup.wait()
        finally:
            if timer is not None:
                timer.cancel()

    def _dequeue(self, request: _Request) -> None:
        if request.queued:
            request.queued = False
            self._queue.remove(request)
            self._queued_rows -= request.rows

    def _fail_queued(self, error: BaseException) -> None:
        for request in list(self._queue):
            self._dequeue(request)
            if not request.future.done():
                request.future.set_exception(error)
