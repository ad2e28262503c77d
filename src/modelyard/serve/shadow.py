"""Shadow traffic: a second alias of the served model sees a sampled share of the
requests after they are answered, and its predictions go to the log under the same
request ids (``modelyard monitor compare`` pairs them). A shadow row is a full row,
like a main one (the inputs' summary as the shadow's kind makes it, the embedding's
projection), so ``modelyard monitor`` can check drift on the shadow's version; the
summaries are made on the log's thread, off the main path, and when both versions
read inputs the same way (equal specs) the shadow's row reuses the main row's
summary instead of computing it again.

The main path only draws a random number, compares the queue's length with its
bound and appends a reference to a plain deque (:meth:`Shadow.admit`, then
:meth:`Shadow.offer`); the shadow's own thread takes whatever queued, runs it as one
batch through the shadow's ONNX session and hands the rows to the log itself, so the
event loop does no shadow work after the append (no future, no batcher task, no
callback per batch: ~6% of the loop's GIL time at c=32, py-spy --gil, 2026-12-06).
With the batcher, whose steps waited on the busy loop, the queue filled and about
half the answers at ``shadow_rate=1.0`` under saturation were dropped; the thread
keeps up (~1% dropped, loaded 2-core machine). When the shadow does fall behind
the queue fills and new work is dropped and counted before anything is built for it
(no work item, no log-row lookup, no exception); the client's answer never waits.
The shadow follows its alias like the main model (hot reload), and one that fails to
load is retried when its alias moves, while the main model keeps serving.

:class:`Shadow` is that admission, queue and thread, what the data plane sees; two
kinds run the batches. :class:`ShadowThreads` runs them in threads of the server
(``shadow_process=false``); by default
:class:`~modelyard.serve.shadow_process.ShadowProcess` only sends each batch to a
process of its own (:mod:`modelyard.serve.shadow_child`), which runs the model and
writes the rows, and builds no model runtime here.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
from prometheus_client import Counter, Gauge

from modelyard.bundle import INPUT_NAME
from modelyard.modality import Batch
from modelyard.modality.base import AnswerRule
from modelyard.monitor.predlog import name_os_thread
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.monitoring import QueuedRow, ServingMonitor
from modelyard.serve.runtime import LoadedModel, ModelRuntime
from modelyard.serve.settings import ServeSettings, second_alias_uri

logger = logging.getLogger("modelyard.serve")

LINGER_S = 0.005
"""How long the shadow's thread waits, after its first queued request, for more to
join the batch (unless a full batch is queued). Per-batch costs (the model call's,
the log's per-call costs, holding the GIL) are then shared by many requests; the
shadow's answers are not waited for, so a few milliseconds cost no client anything."""

SWITCH_INTERVAL_S = 0.001
"""The interpreter's thread switch interval while a shadow runs in threads of the
server (CPython's default is 5 ms). The server then has two background threads that
run Python per answer (the shadow's and the log's, which writes its rows too); when
the event loop wants the GIL back from one that runs Python, it waits up to this
long: 5 ms is most of the main path's p99 (7.8 ms quiet at c=32), 1 ms is not. A
shadow in its own process leaves the default: the server's threads then run what a
server without a shadow runs, plus ~0.1 ms of Python per message, and at 1 ms the
log thread's writes, handed the GIL back and forth 5 times as often, cost the
server ~10% more CPU per answer (loaded, 2026-12-06, benchmarks/serving/RESULTS.md)."""

THREAD_NAME = "modelyard-shadow"
"""The shadow's threads' names (for the OS, the first 15 bytes): the one that runs its
model at ``shadow_nice``, and the one that feeds it and hands its rows to the log."""


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value to ``nice`` (on Linux a thread's own; where
    threads cannot be reniced, nothing): the shadow's model calls yield the CPU to the
    main path's threads when both want it. The thread is named for the OS too."""
    name_os_thread(THREAD_NAME)
    if nice <= 0:
        return
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


# Built per mirrored request on the event loop: slots, and no frozen __init__
# (object.__setattr__ per field).
@dataclass(slots=True)
class ShadowWork:
    """One answered request for the shadow: the main model's decoded batch (reused
    when both versions read inputs the same way) or how to decode it afresh."""

    request_id: str
    main: LoadedModel
    batch: Batch
    decode: Callable[[LoadedModel], Batch]
    rule: AnswerRule | None = None
    """How the main answer was labelled (a text model's threshold): the shadow's row
    is labelled alike, so ``monitor compare`` compares like with like."""


class _Shown(Protocol):
    """What the shadow's info gauge names: a loaded model, here or in the child."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...


class Shadow(abc.ABC):
    """The shadow's admission (sampling, the bound, the log's back-pressure, counting
    each outcome), its queue and the thread that takes the queued work in batches;
    a subclass runs each batch (:meth:`_run`) and says whether a version is loaded."""

    switch_interval_s: float | None = SWITCH_INTERVAL_S
    """The interpreter's switch interval once the shadow runs (None: left as it is)."""

    def __init__(self, settings: ServeSettings, metrics: ServerMetrics, monitor: ServingMonitor):
        self.rate = settings.shadow_rate
        self.monitor = monitor
        self.max_rows = settings.max_batch_size
        """Requests the shadow's thread takes at once (one model call, or one message)."""
        self.linger_s = LINGER_S
        self.capacity = settings.shadow_queue
        """Requests that may wait for the shadow (``shadow_queue``); beyond, drops."""
        # Each request with the main row queued for the log, whose summary it may share.
        # A plain deque (appends and pops are atomic): the event loop appends, the
        # shadow's thread takes, and appending needs no wake-up unless it is idle.
        self.pending: deque[tuple[ShadowWork, QueuedRow | None]] = deque()
        self.running = 0
        """Requests in the shadow batch computing now (not in ``pending``)."""
        self._wake = threading.Event()
        self._stopping = False
        self._worker: threading.Thread | None = None
        self.requests = Counter(
            "modelyard_shadow_requests",
            "Requests offered to the shadow, by outcome: done, dropped (queue full), "
            "failed (the shadow raised), skipped (no shadow loaded), unlogged (the main "
            "answer's row not logged: sampled out or dropped), log_full (no room in the "
            "log for the shadow's row)",
            ["outcome"],
            registry=metrics.registry,
        )
        self.info = Gauge(
            "modelyard_shadow_info",
            "1 for the version loaded as the shadow",
            ["model", "version"],
            registry=metrics.registry,
            multiprocess_mode="livemax",
        )
        self._counted: dict[str, Counter] = {}  # made at first use: no zero series
        self._shown: _Shown | None = None

    @abc.abstractmethod
    async def start(self) -> None:
        """Load (or start) the shadow, then :meth:`_start_worker`."""

    @abc.abstractmethod
    async def close(self, timeout_s: float = 10.0) -> None:
        """Finish or hand over the queued work, then stop."""

    @abc.abstractmethod
    def _loaded(self) -> bool:
        """Whether a shadow version is loaded to take work."""

    @abc.abstractmethod
    def _run(self, items: list[tuple[ShadowWork, QueuedRow | None]]) -> None:
        """Run (or send) one batch of queued work, on the shadow's thread."""

    def _count(self, outcome: str, n: int = 1) -> None:
        child = self._counted.get(outcome)
        if child is None:
            child = self._counted[outcome] = self.requests.labels(outcome)
        child.inc(n)

    def _start_worker(self) -> None:
        if self.switch_interval_s is not None:
            sys.setswitchinterval(min(sys.getswitchinterval(), self.switch_interval_s))
        self._worker = threading.Thread(target=self._work, name=f"{THREAD_NAME}-rows", daemon=True)
        self._worker.start()

    def admit(self, logged: bool = True) -> bool:
        """Whether the shadow takes the request just answered: sampled (``shadow_rate``),
        a shadow loaded, room in its queue and, with a prediction log, a main row that
        was ``logged`` and room for the shadow's row beside it. A sampled request it
        cannot take is counted here (skipped, dropped, unlogged, log_full) before any
        work is done for it.

        The log is where a shadow's answer goes (``monitor compare`` pairs the two rows
        of a request), so an answer whose main row the log did not take (sampled out
        by ``log_sample_rate``, or dropped) or whose own row it would drop is not
        computed: when the log falls behind, the shadow stops adding CPU work and rows
        to it until the log catches up, rather than computing answers it then drops."""
        if self.rate < 1.0 and random.random() >= self.rate:
            return False
        if not self._loaded():
            self._count("skipped")
            return False
        waiting = self._waiting()
        if waiting >= self.capacity:
            self._count("dropped")
            return False
        if self.monitor.log is not None:
            if not logged:
                self._count("unlogged")
                return False
            if not self._log_has_room(waiting):
                self._count("log_full")
                return False
        return True

    def _waiting(self) -> int:
        """Requests counted against ``shadow_queue``: those queued, not yet taken."""
        return len(self.pending)

    def _log_has_room(self, waiting: int) -> bool:
        """Whether the shadow's share of the log has room for one more request's row,
        counting ``waiting`` and the batch computing now."""
        return self.monitor.shadow_room() > waiting + self.running

    def _shared_row(self, work: ShadowWork) -> QueuedRow | None:
        """The main row whose input summary the shadow's row of ``work`` may reuse.
        With a log, only work whose main row was logged gets here (:meth:`admit`)."""
        return self.monitor.queued_row(work.request_id, work.batch.observed)

    def offer(self, work: ShadowWork) -> None:
        """Queue a request :meth:`admit` took (or drop and count it when the queue is
        full); never waits. Call it on the event-loop step that logged the main row."""
        if self._waiting() >= self.capacity:
            self._count("dropped")
            return
        self.pending.append((work, self._shared_row(work)))
        self._queued()

    def _queued(self) -> None:
        """Called on the event loop after each append to :attr:`pending`: wake the
        shadow's thread when it may be idle."""
        if len(self.pending) == 1:
            self._wake.set()

    def _work(self) -> None:
        """The shadow's worker thread: take whatever is queued (up to one batch) and
        run it (:meth:`_run`: one model call, or one message to the child), until
        :meth:`close`.

        One call per batch, not per request: at shadow_rate=1.0 the shadow then costs
        the main path a share of the CPU, not a second per-request hand-off (the
        first version, one submit per request, raised the main p99 by ~40% at c=32).
        """
        name_os_thread(THREAD_NAME)
        pending = self.pending
        while not self._stopping:
            if not pending:
                self._wake.clear()  # cleared before the check: no wake-up is lost
                if not pending:
                    self._wake.wait()
                continue
            if len(pending) < self.max_rows:
                time.sleep(self.linger_s)
            count = min(len(pending), self.max_rows)
            self.running = count  # before the pops: close() never sees neither
            try:
                self._take(count)
            finally:
                self.running = 0

    def _take(self, count: int) -> None:
        """Take ``count`` requests off the queue and run them as one batch; a failure is
        counted, never raised (it never reaches a client)."""
        items = [self.pending.popleft() for _ in range(count)]
        try:
            self._run(items)
        except Exception as error:
            self._count("failed", len(items))
            logger.debug("shadow batch failed: %s", error)

    def _show(self, model: _Shown) -> None:
        if self._shown is not model:
            if self._shown is not None:
                self.info.labels(self._shown.name, self._shown.version).set(0)
            self.info.labels(model.name, model.version).set(1)
            self._shown = model


class ShadowThreads(Shadow):
    """The shadow in threads of the server (``shadow_process=false``): its model runs
    on a thread of its own at ``shadow_nice``, its rows go to the server's log."""

    def __init__(self, settings: ServeSettings, metrics: ServerMetrics, monitor: ServingMonitor):
        super().__init__(settings, metrics, monitor)
        self.nice = settings.shadow_nice
        shadow_settings = replace(
            settings,
            model=second_alias_uri(settings, settings.shadow),
            intra_op_threads=settings.shadow_threads,
            batch_workers=1,
        )
        self.runtime = ModelRuntime(shadow_settings, metrics, role="shadow")
        # The model runs on a thread of its own at shadow_nice; the worker, which runs
        # Python holding the GIL, keeps the process's priority: a niced thread that the
        # kernel preempts while it holds the GIL stalls the event loop with it.
        self._model_thread = concurrent.futures.ThreadPoolExecutor(
            1, THREAD_NAME, initializer=lower_priority, initargs=(self.nice,)
        )

    async def start(self) -> None:
        await self.runtime.start_optional()
        if self.runtime.current is not None:
            self._show(self.runtime.current)
        self._start_worker()

    def _loaded(self) -> bool:
        return self.runtime.current is not None

    def _infer(self, model: LoadedModel, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """The shadow model's outputs for ``inputs`` (on the model's thread)."""
        results = model.session.run(None, {INPUT_NAME: inputs})  # type: ignore[attr-defined]  # onnxruntime ships no types
        return dict(zip(model.output_names, results, strict=True))

    def _run(self, items: list[tuple[ShadowWork, QueuedRow | None]]) -> None:
        model = self.runtime.current
        if model is None:
            self._count("skipped", len(items))
            return
        self._show(model)
        # Equal specs: the main model's decoded inputs, and its row's input summary.
        same = [model.spec == work.main.spec for work, _ in items]
        batches = [
            work.batch if alike else work.decode(model)
            for (work, _), alike in zip(items, same, strict=True)
        ]
        started = time.perf_counter()
        inputs = np.concatenate([batch.model_input for batch in batches])
        outputs = self._model_thread.submit(self._infer, model, inputs).result()
        latency = time.perf_counter() - started
        start = 0
        logged: list[
            tuple[str, Any, dict[str, np.ndarray], QueuedRow | None, AnswerRule | None]
        ] = []
        for (work, main_row), batch, alike in zip(items, batches, same, strict=True):
            rows = len(batch.model_input)
            mine = {name: value[start : start + rows] for name, value in outputs.items()}
            shares = main_row if alike else None
            logged.append((work.request_id, batch.observed, mine, shares, work.rule))
            start += rows
        self.monitor.observe_shadow(model, logged, latency)
        self._count("done", len(items))

    async def close(self, timeout_s: float = 10.0) -> None:
        """Finish the queued shadow work (so its log rows are written), then stop."""
        deadline = time.monotonic() + timeout_s
        worker = self._worker
        while (
            (self.pending or self.running)
            and worker is not None
            and worker.is_alive()
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.01)
        self._stopping = True
        self._wake.set()
        if worker is not None:  # a batch still computing ends within its model call
            await asyncio.get_running_loop().run_in_executor(None, worker.join, 5.0)
        self._model_thread.shutdown(wait=False)
        await self.runtime.close()
