"""Prometheus metrics of one server, in a registry of its own (one per app).

With ``--workers N`` every worker process is a separate server, so a scrape that
reaches one worker would see only its share. The server then sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start: prometheus_client keeps each
process's values in files there, and :meth:`ServerMetrics.render` sums them, so
every scrape shows the whole server whichever worker answers it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from modelyard.serve.batcher import BatchStats

if TYPE_CHECKING:
    from modelyard.modality.base import AnswerRule

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# Fine near 1, where a healthy classifier's answers pile up.
_CONFIDENCE_BUCKETS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The folder the worker processes share their metrics through, if any."""
    return os.environ.get(MULTIPROCESS_ENV) or None


_FEW = 4
"""Up to this many values, ``observe`` per value is cheaper than numpy's bucket count
(one request's row on an idle server: ~2 us against ~6.5 us)."""


def observe_many(histogram: Any, values: np.ndarray) -> None:
    """``histogram.observe(v)`` for every value, with one increment per touched bucket.

    prometheus_client has no bulk observe, and its per-value loop over the buckets
    is Python; a batch of 32 confidences costs ~32 such loops. This counts buckets
    with numpy (``le`` semantics: the first bound >= value) and adds the counts to
    the child's bucket and sum values, the same fields ``observe`` updates. If a
    future client version renames them, it falls back to ``observe`` per value.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    buckets = getattr(histogram, "_buckets", None)
    bounds = getattr(histogram, "_upper_bounds", None)
    total = getattr(histogram, "_sum", None)
    if (
        values.size <= _FEW
        or buckets is None
        or bounds is None
        or total is None
        or len(buckets) != len(bounds)
    ):
        for value in values:
            histogram.observe(float(value))
        return
    if values.size == 0:
        return
    index = np.searchsorted(np.asarray(bounds, dtype=np.float64), values, side="left")
    counts = np.bincount(index, minlength=len(bounds) + 1)
    total.inc(float(values.sum()))
    for position in np.flatnonzero(counts[: len(bounds)]):  # NaN lands past +Inf: no bucket
        buckets[position].inc(int(counts[position]))


_PENDING_LIMIT = 1024
"""Observations held (one server process) before they are handed over unasked."""


class _FlushFirst:
    """A collector that collects nothing: registered first, it hands the held
    observations to their metrics before the registry collects them."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Any]:
        self._metrics.flush()
        return []


class ServerMetrics:
    def __init__(self) -> None:
        # Labelled children by (metric, labels): ``metric.labels(...)`` validates and
        # locks on every call, which the per-request path cannot afford.
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        # One server process: per-request and per-batch observations are held in a
        # list and handed to prometheus_client in bulk (numpy bucket counts, one
        # increment per counter) whenever the registry is collected (a scrape) or
        # _PENDING_LIMIT are held; with --workers N every value goes to the shared
        # files at once, since another worker's scrape must see it.
        self.deferred = multiprocess_dir() is None
        self._pending: list[tuple[Any, float]] = []
        self._pending_lock = threading.Lock()
        r.register(_FlushFirst(self))
        self.requests = Counter(
            "modelyard_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "modelyard_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "modelyard_requests_in_flight",
            "Requests being handled",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.active_requests = 0
        """Requests this process is handling (the gauge above, readable cheaply; only
        the event loop changes it). One server process: the gauge reads it."""
        if self.deferred:
            self.in_flight.set_function(lambda: self.active_requests)
        self.batch_size = Histogram(
            "modelyard_batch_size",
            "Rows per ONNX Runtime call",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.batch_trigger = Counter(
            "modelyard_batch_trigger",
            "Why each batch fired: full, timeout, drain, or inline (a lone request computed "
            "on the event loop)",
            ["model", "trigger"],
            registry=r,
        )
        self.queue_time = Histogram(
            "modelyard_queue_seconds",
            "Time a request waited for its batch",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.compute_time = Histogram(
            "modelyard_inference_seconds",
            "ONNX Runtime time per batch",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "modelyard_model_info",
            "The model version being served (1) and retired ones (0)",
            ["model", "version"],
            registry=r,
            # Workers swap versions one by one: a version is served while any live
            # worker serves it.
            multiprocess_mode="livemax",
        )
        self.predicted = Counter(
            "modelyard_predictions",
            "Label served per answered instance, by the version that served it (main or "
            "canary): the predicted class, or a text model's low_confidence_label below "
            "its min_confidence",
            ["model", "version", "label"],
            registry=r,
        )
        self.confidence = Histogram(
            "modelyard_prediction_confidence",
            "Probability of the predicted class per instance the main version computed",
            ["model"],
            buckets=_CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "modelyard_reloads",
            "Hot reload attempts by result (swapped, failed)",
            ["model", "result"],
            registry=r,
        )

    def state_gauge(self, name: str, documentation: str, labels: list[str]) -> Gauge:
        """A gauge holding the latest state (drift, live accuracy) in this registry; with
        --workers N every worker computes it from the shared log, so the newest wins."""
        return Gauge(
            name, documentation, labels, registry=self.registry, multiprocess_mode="livemostrecent"
        )

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached."""
        key = (metric, labels)
        try:
            return self._children[key]
        except KeyError:
            child = self._children[key] = metric.labels(*labels)
            return child

    def later(self, *observations: tuple[Any, float]) -> None:
        """For each ``(child, value)``: ``child.observe(value)`` (a histogram's child)
        or ``child.inc(value)`` (a counter's), now with --workers N, else at the next
        :meth:`flush`.

        Event-loop code calls this per request: one lock and a list extend, where
        prometheus_client takes a lock and several Python calls per value."""
        if not self.deferred:
            for child, value in observations:
                if isinstance(child, Histogram):
                    child.observe(value)
                else:
                    child.inc(value)
            return
        with self._pending_lock:
            pending = self._pending
            pending += observations
            full = len(pending) >= _PENDING_LIMIT
        if full:
            self.flush()

    def flush(self) -> None:
        """Hand the held observations to their metrics (any thread; a scrape calls it)."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        grouped: dict[Any, list[float]] = {}
        for child, value in pending:
            grouped.setdefault(child, []).append(value)
        for child, values in grouped.items():
            if isinstance(child, Histogram):
                observe_many(child, np.asarray(values))
            else:
                child.inc(sum(values))

    def count_request(self, route: str, status: str, seconds: float) -> None:
        """One answered HTTP request: its route's count by status and its latency."""
        self.later(
            (self.child(self.requests, route, status), 1),
            (self.child(self.latency, route), seconds),
        )

    def observe_batch(self, model: str, stats: BatchStats) -> None:
        queue_time = self.child(self.queue_time, model)
        self.later(
            (self.child(self.batch_size, model), stats.size),
            (self.child(self.batch_trigger, model, stats.trigger), 1),
            (self.child(self.compute_time, model), stats.compute_seconds),
            *[(queue_time, seconds) for seconds in stats.queue_seconds],
        )

    def observe_confidences(self, model: str, probabilities: np.ndarray) -> None:
        """One batch's top-class probabilities (any thread). Per batch, not per request:
        numpy counts a large batch's buckets at once (:func:`observe_many`)."""
        if probabilities.ndim != 2 or len(probabilities) == 0:
            return
        confidence = self.child(self.confidence, model)
        if self.deferred:  # held, and counted with other batches' in one numpy call
            self.later(*[(confidence, value) for value in probabilities.max(axis=1).tolist()])
            return
        if len(probabilities) <= _FEW:  # a few rows: no bucket arrays
            for value in probabilities.max(axis=1).tolist():
                confidence.observe(value)
            return
        observe_many(confidence, probabilities.max(axis=1))

    def count_served(
        self,
        model: str,
        version: str,
        labels: Sequence[str],
        probabilities: np.ndarray,
        rule: AnswerRule | None,
    ) -> None:
        """Count one answer's served labels under the version that served it: its top
        classes, and ``rule.label`` for those below ``rule.threshold`` (the request's
        own threshold or the served one; ``rule`` None: the top classes). A label value
        appears only once it is served, so ``unknown`` only where used."""
        if probabilities.ndim != 2 or len(probabilities) == 0:
            return
        if len(probabilities) == 1:  # the usual request: the flat argmax is its column
            index = int(probabilities.argmax())
            label = labels[index]
            if rule is not None:
                label = rule.served(label, probabilities[0, index])
            self.child(self.predicted, model, version, label).inc()
            return
        if len(probabilities) <= _FEW:  # a few rows: no index arrays
            for row in probabilities:
                index = int(row.argmax())
                label = labels[index]
                if rule is not None:
                    label = rule.served(label, row[index])
                self.child(self.predicted, model, version, label).inc()
            return
        best = probabilities.argmax(axis=1)
        confident = np.ones(len(best), dtype=bool)
        if rule is not None:
            confident = probabilities[np.arange(len(best)), best] >= rule.threshold
            low = len(best) - int(confident.sum())
            if low:
                self.child(self.predicted, model, version, rule.label).inc(low)
        counts = np.bincount(best[confident], minlength=len(labels))
        for seen in np.flatnonzero(counts).tolist():
            self.child(self.predicted, model, version, labels[seen]).inc(int(counts[seen]))

    def render(self) -> bytes:
        folder = multiprocess_dir()
        if folder is None:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=folder)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        return generate_latest(combined)

    def close(self) -> None:
        """A stopping worker's live gauges (in flight, model info) stop counting."""
        folder = multiprocess_dir()
        if folder is not None:
            mark_process_dead(os.getpid(), folder)  # type: ignore[no-untyped-call]  # as above
