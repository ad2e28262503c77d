"""The server's side of monitoring: log predictions, and check drift periodically.

The data plane calls :meth:`ServingMonitor.observe` after inference. On the event
loop that only queues references to the request's inputs and outputs; the
:class:`PredictionLogger`'s thread, before each write, summarises everything queued
since the last one in a few vectorised numpy calls (the model's kind summarises its
inputs; embedding projection, labels) and does the I/O. Summarising per request on the loop cost
~45% of the server's event-loop time at c=32 (2026-11-24); in bulk it is a few
microseconds per row, off the loop. A failure here is logged and never reaches the
client.

A shadow's row of a request reuses the main row's input summary when both versions
read the inputs the same way (the shadow was handed the main row's decoded inputs):
the same inputs give the same summary, and computing it twice cost the log thread,
which holds the GIL the event loop needs, a third of a shadow row's time.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import Counter

from modelyard.monitor.logstore import REQUEST_ID_CHARS, create_log_engine, read_window
from modelyard.monitor.observe import observe_outputs
from modelyard.monitor.predlog import PredictionLogger
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.settings import ServeSettings

if TYPE_CHECKING:
    from modelyard.modality.base import AnswerRule
    from modelyard.serve.runtime import LoadedModel, ModelRuntime

logger = logging.getLogger("modelyard.serve")

_RECENT_IDS = 50_000
"""Request ids remembered for feedback that arrives before its prediction is written."""


@dataclass(eq=False)
class _Queued:
    """One answered request, waiting for the log thread to summarise it: ``inputs``
    is the request's ``Batch.observed`` (pixels, texts, ... as the model's kind has it)."""

    model: LoadedModel
    request_id: str
    inputs: Any
    probabilities: np.ndarray
    embedding: np.ndarray | None
    latency_s: float
    shares: _Queued | None = None
    """The main row whose input summary this (shadow) row reuses: same inputs object,
    same spec. None: the row summarises its own inputs."""
    rule: AnswerRule | None = None
    """How the request's answers were labelled (a text model's threshold); a shadow
    row gets its main row's, so both are labelled alike. None: the top class."""
    summarised: tuple[dict[str, np.ndarray], int] | None = field(default=None, repr=False)
    """Set by the log thread: the summaries of this row's run and where its rows
    start in them, for a shadow row that shares them."""

    def same_group(self, other: _Queued) -> bool:
        """Whether the two can be summarised in one concatenated batch."""
        if self.model is not other.model or (self.embedding is None) != (other.embedding is None):
            return False
        if (self.shares is None) != (other.shares is None):
            return False
        return self.model.modality.same_group(self.inputs, other.inputs)


QueuedRow = _Queued
"""A row queued for the log (opaque outside this module): what a shadow's row shares."""


def _runs(queued: list[_Queued]) -> list[list[_Queued]]:
    """The queued requests in groups that concatenate, each group in the order of its
    answers; a shadow's groups after every other, so its row of a request follows the
    main row in the log.

    Groups, not consecutive runs: a shadow's rows arrive in bursts between the main
    rows, and cutting the main rows into short runs at each burst made the log thread
    pay the per-call cost of the summaries (~50 us for one image, ~2.5 us a row for 32)
    again and again, holding the GIL the event loop needs.
    """
    groups: list[list[_Queued]] = []
    shadow_groups: list[list[_Queued]] = []
    for item in queued:
        into = shadow_groups if item.model.role == "shadow" else groups
        for group in reversed(into):
            if group[0].same_group(item):
                group.append(item)
                break
        else:
            into.append([item])
    return groups + shadow_groups


def _shared_summaries(run: list[_Queued]) -> dict[str, np.ndarray] | None:
    """The summaries of a run of shadow rows, gathered from the main rows they share
    (contiguous slices joined); None when a main row was never summarised (its run
    failed), so the run summarises its own inputs."""
    pieces: list[tuple[dict[str, np.ndarray], int, int]] = []
    for item in run:
        main = item.shares
        done = main.summarised if main is not None else None
        if done is None:
            return None
        summaries, start = done
        stop = start + len(item.inputs)
        if pieces and pieces[-1][0] is summaries and pieces[-1][2] == start:
            pieces[-1] = (summaries, pieces[-1][1], stop)
        else:
            pieces.append((summaries, start, stop))
    if len(pieces) == 1:
        summaries, start, stop = pieces[0]
        return {name: values[start:stop] for name, values in summaries.items()}
    return {
        name: np.concatenate([piece[name][start:stop] for piece, start, stop in pieces])
        for name in pieces[0][0]
    }


def _served_labels(
    run: list[_Queued], top: Sequence[str], confidences: np.ndarray
) -> tuple[Sequence[str], list[str | None] | None]:
    """The label each row of a run was served, and the model's top class where that
    differs (None when no row's does: every row of an image model, say, which costs
    one attribute read per run)."""
    if not run[0].model.modality.thresholded or all(item.rule is None for item in run):
        return top, None
    counts = [len(item.inputs) for item in run]
    thresholds = np.repeat(
        [-np.inf if item.rule is None else item.rule.threshold for item in run], counts
    )
    owners = np.repeat(np.arange(len(run)), counts)
    served: list[str] | None = None
    tops: list[str | None] | None = None
    for i in np.flatnonzero(~(confidences >= thresholds)).tolist():  # NaN: not confident
        rule = run[owners[i]].rule
        if rule is None or rule.label == top[i]:
            continue
        if served is None or tops is None:
            served, tops = list(top), [None] * len(top)
        served[i], tops[i] = rule.label, top[i]
    return (top, None) if served is None else (served, tops)


def _concatenated(run: list[_Queued]) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """Per-row request ids, outputs and latencies of a run of queued requests."""
    counts = [len(item.inputs) for item in run]
    outputs = {"probabilities": np.concatenate([item.probabilities for item in run])}
    if run[0].embedding is not None:
        outputs["embedding"] = np.concatenate([item.embedding for item in run])
    request_ids = [
        item.request_id[:REQUEST_ID_CHARS]
        for item, n in zip(run, counts, strict=True)
        for _ in range(n)
    ]
    return request_ids, outputs, np.repeat([item.latency_s for item in run], counts)


class ServingMonitor:
    def __init__(self, settings: ServeSettings, metrics: ServerMetrics):
        self.settings = settings
        self.metrics = metrics
        self.dropped = Counter(
            "modelyard_prediction_log_dropped",
            "Prediction log records dropped: buffer full while the database was slow or "
            "down, or unwritten at shutdown",
            registry=metrics.registry,
        )
        self.shadow_dropped = Counter(
            "modelyard_prediction_log_shadow_dropped",
            "Of the dropped prediction log records, the shadow's: a shadow may fill only "
            "part of the buffer, so they are dropped before the rows of answers clients got",
            registry=metrics.registry,
        )
        # With --workers N each worker checks the shared log: show the newest result.
        self.drift_detected = metrics.state_gauge(
            "modelyard_drift_detected",
            "1 when the latest periodic drift check found drift in the served traffic, else 0",
            ["model"],
        )
        self.drift_score = metrics.state_gauge(
            "modelyard_drift_score",
            "Test statistic of each drift check: KS D for input summaries and confidence, "
            "chi-square for labels, squared MMD for the embedding",
            ["model", "check"],
        )
        self.drift_p_value = metrics.state_gauge(
            "modelyard_drift_p_value",
            "p-value of each drift check (compare with alpha / number of checks)",
            ["model", "check"],
        )
        self.log: PredictionLogger | None = None
        if settings.log_predictions:
            self.log = PredictionLogger(
                settings.prediction_log_url,
                flush_interval_s=settings.log_flush_interval_s,
                capacity=settings.log_buffer_records,
                sample_rate=settings.log_sample_rate,
                store_inputs=settings.log_raw_inputs,
                close_timeout_s=settings.log_stop_timeout_s,
                on_dropped=self.dropped.inc,
                on_shadow_dropped=self.shadow_dropped.inc,
                collect=self.flush_queued,
            )
        self._queued: list[_Queued] = []
        self._queued_rows = 0
        self._queue_lock = threading.Lock()
        # Held for a whole hand-over, so close() cannot overtake one in progress.
        self._flush_lock = threading.Lock()
        self._drift_task: asyncio.Task[None] | None = None
        # Ids queued for the log lately, oldest first: feedback may name a request
        # whose prediction is not written yet (the log writes once a second). An
        # OrderedDict: forgetting a plain dict's oldest key (next(iter(...))) walks
        # over the slots of the keys deleted before it: observe() cost ~10 us of CPU
        # once 50,000 were remembered, against ~1.3 now (2026-12-06).
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._last: _Queued | None = None

    def queued_row(self, request_id: str, inputs: Any) -> _Queued | None:
        """The main row just queued for ``request_id`` with exactly these ``inputs``
        (the same object), for a shadow row to share its summary; else None.

        Only the latest row is kept: the data plane offers a request to the shadow
        right after queueing its main row, on the same event-loop step."""
        last = self._last
        if last is not None and last.request_id == request_id and last.inputs is inputs:
            return last
        return None

    def recently_logged(self, request_id: str) -> bool:
        """Whether ``request_id`` was queued for the log lately (written or not)."""
        return request_id in self._recent

    async def start(self, runtime: ModelRuntime) -> None:
        if self.log is None:
            if self.settings.drift_interval_s > 0:
                logger.warning("drift_interval_s needs log_predictions=true; no drift checks")
            return
        self.log.start()
        if self.settings.drift_interval_s > 0:
            self._drift_task = asyncio.create_task(self._drift_forever(runtime))

    async def close(self) -> None:
        """Stop the drift checks, then write every buffered record."""
        if self._drift_task is not None:
            self._drift_task.cancel()
        if self.log is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.flush_queued)
            await loop.run_in_executor(None, self.log.close)

    def observe(
        self,
        model: LoadedModel,
        request_id: str,
        inputs: Any,
        outputs: dict[str, np.ndarray],
        latency_s: float,
        sampled: bool | None = None,
        shares: _Queued | None = None,
        rule: AnswerRule | None = None,
    ) -> bool:
        """Queue one answered request for the log: ``inputs`` is its ``Batch.observed``
        (uint8 images or normalised floats, texts, ...). Returns whether it was queued.

        ``sampled`` overrides the log's sample rate (a shadow's prediction is logged
        exactly when the main one of the same request was; its row summarises the
        inputs too, so drift can be checked on the shadow's version). ``shares`` is
        the main row (:meth:`queued_row`) whose summary a shadow row reuses, when the
        two versions' specs are equal and ``inputs`` is the main row's. ``rule`` is
        how the answers were labelled (:meth:`Modality.answer_rule`): the row records
        the served label, and the top class where that differs.

        Cheap on purpose (the event loop calls it per request): the inputs are only
        referenced; :meth:`flush_queued` summarises them on the log thread. Beyond the
        log's capacity queued rows are dropped and counted, like a full log buffer.
        The log keeps summaries of the inputs, and the inputs only with log_raw_inputs.
        """
        log = self.log
        if log is None or not (log.should_log() if sampled is None else sampled):
            return False
        rows = len(inputs)
        item = _Queued(
            model,
            request_id,
            inputs,
            outputs["probabilities"],
            outputs.get("embedding"),
            latency_s,
            shares,
            rule,
        )
        with self._queue_lock:
            before = self._queued_rows
            full = log.buffered + before + rows > log.capacity
            if not full:
                self._queued.append(item)
                self._queued_rows += rows
        if full:
            log.dropped += rows
            self.dropped.inc(rows)
            return False
        if sampled is None:
            self._last = item
        recent = self._recent
        recent[request_id[:REQUEST_ID_CHARS]] = None
        if len(recent) > _RECENT_IDS:
            recent.popitem(last=False)
        if before < self.settings.log_write_rows <= before + rows:  # 0: never
            log.wake()
        return True

    def shadow_room(self) -> int:
        """Rows a shadow may still add before its share of the log is full
        (:meth:`PredictionLogger.limit`), counting rows queued but not yet handed to
        the log; ``sys.maxsize`` without a log. Read without the lock: a hint for
        :meth:`Shadow.admit`, which :meth:`observe_shadow` enforces exactly."""
        log = self.log
        if log is None:
            return sys.maxsize
        return log.limit("shadow") - log.buffered - self._queued_rows

    def observe_shadow(
        self,
        model: LoadedModel,
        rows: list[tuple[str, Any, dict[str, np.ndarray], _Queued | None, AnswerRule | None]],
        latency_s: float,
    ) -> int:
        """Queue a shadow batch's rows for the log in one step: per row its request id,
        inputs (``Batch.observed``), outputs, the main row it shares (or None) and the
        main answer's rule (the shadow's answer is labelled as the main one was). Each
        is logged because its main row was (no sampling draw); the ids are already
        remembered by the main rows. Rows beyond the share of the log's capacity a
        shadow may fill (:meth:`PredictionLogger.limit`) are dropped and counted, as
        dropped and as the shadow's, so main rows still find room. Returns how many
        were queued.

        One lock and one capacity check per batch rather than per row: at
        ``shadow_rate=1.0`` this runs on the event loop for about every answer."""
        log = self.log
        if log is None or not rows:
            return 0
        items = [
            _Queued(
                model,
                request_id,
                inputs,
                outputs["probabilities"],
                outputs.get("embedding"),
                latency_s,
                shares,
                rule,
            )
            for request_id, inputs, outputs, shares, rule in rows
        ]
        counts = [len(item.inputs) for item in items]
        room = log.limit("shadow") - log.buffered  # main rows keep the rest
        with self._queue_lock:
            before = self._queued_rows
            kept, total = 0, before
            for count in counts:
                if total + count > room:
                    break
                total += count
                kept += 1
            self._queued.extend(items[:kept])
            self._queued_rows = total
        dropped = sum(counts[kept:])
        if dropped:
            log.dropped += dropped
            self.dropped.inc(dropped)
            self.shadow_dropped.inc(dropped)
        if before < self.settings.log_write_rows <= total:  # 0: never
            log.wake()
        return kept

    def flush_queued(self) -> None:
        """Summarise every queued request and hand the rows to the log (blocking).

        Runs on the log thread before each write, and once more when the server stops.
        """
        with self._flush_lock:
            with self._queue_lock:
                queued, self._queued, self._queued_rows = self._queued, [], 0
            for run in _runs(queued):
                try:
                    self._record_run(run)
                except Exception:  # monitoring must never fail a request
                    rows = sum(len(item.inputs) for item in run)
                    logger.exception("could not log %d predictions", rows)
                    if self.log is not None:
                        self.log.dropped += rows
                    self.dropped.inc(rows)

    def _record_run(self, run: list[_Queued]) -> None:
        assert self.log is not None
        model = run[0].model
        modality = model.modality
        request_ids, outputs, latencies = _concatenated(run)
        summaries = _shared_summaries(run) if run[0].shares is not None else None
        inputs: Any = None
        if summaries is None or self.log.store_inputs:
            inputs = modality.concatenate([item.inputs for item in run], model.spec)
        if summaries is None:
            summaries = modality.summaries(inputs)
            start = 0
            for item in run:
                item.summarised = (summaries, start)
                start += len(item.inputs)
        raw = modality.raw_inputs(inputs) if self.log.store_inputs else None
        observed = observe_outputs(
            model.bundle.reference_profile,
            model.bundle.labels,
            summaries,
            outputs["probabilities"],
            outputs.get("embedding"),
        )
        served, top = _served_labels(run, observed.labels, observed.confidences)
        self.log.record(
            model.name,
            model.version,
            request_ids,  # cut to REQUEST_ID_CHARS; ids are client-chosen
            observed.summaries,
            observed.projection,
            served,
            observed.confidences,
            latencies,
            kind=modality.kind,
            raw_inputs=raw,
            role=model.role,
            top_labels=top,
        )

    def check_drift_once(self, model: LoadedModel) -> bool | None:
        """Test the newest ``drift_window`` records and set the gauges (blocking).

        Returns the verdict, or None when too few records were logged yet.
        """
        # Imported here: scipy.stats costs ~0.7 s at startup, and a server restarted
        # after a crash should be ready in well under two seconds.
        from modelyard.monitor.drift import MIN_RECORDS, WindowData, run_checks

        engine = create_log_engine(self.settings.prediction_log_url)
        try:
            window = read_window(
                engine, model.name, version=model.version, last=self.settings.drift_window
            )
        finally:
            engine.dispose()
        if len(window) < MIN_RECORDS:
            return None
        checks = run_checks(
            model.bundle.reference_profile,
            WindowData(window.summaries, window.projection, window.labels, window.confidences),
        )
        for check in checks:
            self.drift_score.labels(model.name, check.name).set(check.statistic)
            self.drift_p_value.labels(model.name, check.name).set(check.p_value)
        drift = any(check.drift for check in checks)
        self.drift_detected.labels(model.name).set(int(drift))
        return drift

    async def _drift_forever(self, runtime: ModelRuntime) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.drift_interval_s)
            model = runtime.current
            if model is None:
                continue
            try:
                await loop.run_in_executor(None, self.check_drift_once, model)
            except Exception as error:  # the database is down: keep serving, say why
                logger.warning("periodic drift check failed: %s", error)
