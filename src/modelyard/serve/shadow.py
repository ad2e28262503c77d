"""Shadow traffic: a second alias of the served model sees a sampled share of the
requests after they are answered, and its predictions go to the log under the same
request ids (``modelyard monitor compare`` pairs them).

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
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from prometheus_client import Counter, Gauge

from modelyard.modality import Batch
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.monitoring import ServingMonitor
from modelyard.serve.runtime import LoadedModel, ModelRuntime
from modelyard.serve.settings import ServeSettings, second_alias_uri

logger = logging.getLogger("modelyard.serve")

WORKERS = 4
"""Shadow requests in flight at once: enough for its batcher to form batches."""


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
        self.monitor = monitor
        shadow_settings = replace(
            settings,
            model=second_alias_uri(settings, settings.shadow),
            intra_op_threads=settings.shadow_threads,
            batch_workers=1,
        )
        self.runtime = ModelRuntime(shadow_settings, metrics, role="shadow")
        self.queue: asyncio.Queue[ShadowWork] = asyncio.Queue(settings.shadow_queue)
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
        try:
            self.queue.put_nowait(work)
        except asyncio.QueueFull:
            self._count("dropped")

    async def _work(self) -> None:
        while True:
            work = await self.queue.get()
            try:
                await self._run(work)
            except Exception as error:  # a shadow failure never reaches a client
                self._count("failed")
                logger.debug("shadow request failed: %s", error)
            finally:
                self.queue.task_done()

    async def _run(self, work: ShadowWork) -> None:
        model = self.runtime.current
        if model is None:
            self._count("skipped")
            return
        self._show(model)
        batch = work.batch if model.spec == work.main.spec else work.decode(model)
        started = time.perf_counter()
        served, outputs = await self.runtime.infer(batch.model_input)
        if work.logged:
            self.monitor.observe(
                served,
                work.request_id,
                batch.observed,
                outputs,
                time.perf_counter() - started,
                sampled=True,
            )
        self._count("done")

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
