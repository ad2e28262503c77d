"""Shadow traffic: a second alias of the served model sees a sampled share of the
requests after they are answered, and its predictions go to the log under the same
request ids (``modelyard monitor compare`` pairs them). A shadow row is a full row,
like a main one (the inputs' summary as the shadow's kind makes it, the embedding's
projection), so ``modelyard monitor`` can check drift on the shadow's version; the
summaries are made on the log's thread, off the main path, and when both versions
read inputs the same way (equal specs) the shadow's row reuses the main row's
summary instead of computing it again.

The main path only draws a random number and puts a reference on a bounded queue
(``put_nowait``); a few worker tasks take from it and submit to the shadow's own
batcher, whose thread runs the shadow's ONNX session. When the shadow falls behind
the queue fills and new work is dropped and counted; the client's answer never
waits. The shadow follows its alias like the main model (hot reload), and one that
fails to load is retried when its alias moves, while the main model keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from prometheus_client import Counter, Gauge

from modelyard.modality import Batch
from modelyard.monitor.predlog import name_os_thread
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.monitoring import QueuedRow, ServingMonitor
from modelyard.serve.runtime import LoadedModel, ModelRuntime
from modelyard.serve.settings import ServeSettings, second_alias_uri

logger = logging.getLogger("modelyard.serve")

WORKERS = 1
"""Shadow batches in flight at once: one, so work queues up into the next batch
while the shadow computes."""


LINGER_S = 0.005
"""How long the shadow's worker waits, after its first queued request, for more to
join the batch (unless a full batch is queued). Per-batch costs (the hand-off to the
shadow's thread, futures, the log's per-call costs) are then shared by many requests
rather than paid per request on the event loop; the shadow's answers are not waited
for, so a few milliseconds cost no client anything."""

THREAD_NAME = "modelyard-shadow"


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value to ``nice`` (on Linux a thread's own; where
    threads cannot be reniced, nothing): the shadow's model calls yield the CPU to the
    main path's threads when both want it. The thread is named for the OS too."""
    name_os_thread(THREAD_NAME)
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


@dataclass(frozen=True)
class ShadowWork:
    """One answered request for the shadow: the main model's decoded batch (reused
    when both versions read inputs the same way) or how to decode it afresh."""

    request_id: str
    main: LoadedModel
    batch: Batch
    decode: Callable[[LoadedModel], Batch]
    logged: bool
    """Whether the main prediction was logged: the shadow's is logged with it, so the
    log holds both rows of a request or neither."""


class Shadow:
    def __init__(self, settings: ServeSettings, metrics: ServerMetrics, monitor: ServingMonitor):
        self.rate = settings.shadow_rate
        self.nice = settings.shadow_nice
        self._niced: LoadedModel | None = None
        self.monitor = monitor
        shadow_settings = replace(
            settings,
            model=second_alias_uri(settings, settings.shadow),
            intra_op_threads=settings.shadow_threads,
            batch_workers=1,
        )
        self.runtime = ModelRuntime(shadow_settings, metrics, role="shadow")
        self.max_rows = settings.max_batch_size
        # Each request with the main row queued for the log, whose summary it may share.
        self.queue: asyncio.Queue[tuple[ShadowWork, QueuedRow | None]] = asyncio.Queue(
            settings.shadow_queue
        )
        self._workers: list[asyncio.Task[None]] = []
        self.requests = Counter(
            "modelyard_shadow_requests",
            "Requests offered to the shadow, by outcome: done, dropped (queue full), "
            "failed (the shadow raised), skipped (no shadow loaded)",
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
        self._counted: dict[str, Counter] = {}
        self._shown: LoadedModel | None = None

    def _count(self, outcome: str, n: int = 1) -> None:
        child = self._counted.get(outcome)
        if child is None:
            child = self._counted[outcome] = self.requests.labels(outcome)
        child.inc(n)

    async def start(self) -> None:
        await self.runtime.start_optional()
        if self.runtime.current is not None:
            self._show(self.runtime.current)
        self._workers = [asyncio.create_task(self._work()) for _ in range(WORKERS)]

    def sampled(self) -> bool:
        return self.rate >= 1.0 or random.random() < self.rate

    def offer(self, work: ShadowWork) -> None:
        """Queue a request for the shadow, or drop and count it (never waits)."""
        if self.runtime.current is None:
            self._count("skipped")
            return
        row = self.monitor.queued_row(work.request_id, work.batch.observed) if work.logged else None
        try:
            self.queue.put_nowait((work, row))
        except asyncio.QueueFull:
            self._count("dropped")

    async def _work(self) -> None:
        """Take whatever is queued (up to one batch) and run it as one model call.

        One call per batch, not per request: at shadow_rate=1.0 the shadow then costs
        the main path a share of the CPU, not a second per-request hand-off (the
        first version, one submit per request, raised the main p99 by ~40% at c=32).
        """
        while True:
            items = [await self.queue.get()]
            if self.queue.qsize() < self.max_rows - 1:
                await asyncio.sleep(LINGER_S)
            while len(items) < self.max_rows and not self.queue.empty():
                items.append(self.queue.get_nowait())
            try:
                await self._run(items)
            except Exception as error:  # a shadow failure never reaches a client
                self._count("failed", len(items))
                logger.debug("shadow batch failed: %s", error)
            finally:
                for _ in items:
                    self.queue.task_done()

    async def _run(self, items: list[tuple[ShadowWork, QueuedRow | None]]) -> None:
        model = self.runtime.current
        if model is None:
            self._count("skipped", len(items))
            return
        self._show(model)
        if self.nice and self._niced is not model:  # a new version: a new batcher thread
            await asyncio.get_running_loop().run_in_executor(
                model.batcher.executor, lower_priority, self.nice
            )
            self._niced = model
        # Equal specs: the main model's decoded inputs, and its row's input summary.
        same = [model.spec == work.main.spec for work, _ in items]
        batches = [
            work.batch if alike else work.decode(model)
            for (work, _), alike in zip(items, same, strict=True)
        ]
        started = time.perf_counter()
        inputs = np.concatenate([batch.model_input for batch in batches])
        served, outputs = await self.runtime.infer(inputs)
        latency = time.perf_counter() - started
        start = 0
        for (work, main_row), batch, alike in zip(items, batches, same, strict=True):
            rows = len(batch.model_input)
            if work.logged:
                mine = {name: value[start : start + rows] for name, value in outputs.items()}
                self.monitor.observe(
                    served,
                    work.request_id,
                    batch.observed,
                    mine,
                    latency,
                    sampled=True,
                    shares=main_row if alike else None,
                )
            start += rows
        self._count("done", len(items))

    def _show(self, model: LoadedModel) -> None:
        if self._shown is not model:
            if self._shown is not None:
                self.info.labels(self._shown.name, self._shown.version).set(0)
            self.info.labels(model.name, model.version).set(1)
            self._shown = model

    async def close(self, timeout_s: float = 10.0) -> None:
        """Finish the queued shadow work (so its log rows are written), then stop."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.queue.join(), timeout_s)
        for task in self._workers:
            task.cancel()
        await self.runtime.close()
