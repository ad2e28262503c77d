"""``POST /v1/feedback``: store true labels for served requests and export the live
accuracy of the newest labelled window as Prometheus gauges.

The checks and the SQL are :mod:`modelyard.monitor.feedback`'s; this module runs
them off the event loop and keeps the gauges. ``modelyard_live_accuracy`` beside
``modelyard_test_accuracy`` (the bundle's offline score) is what the alert rule
``ModelyardLiveAccuracyLow`` in ``deploy/prometheus/rules/`` compares.

With ``--workers N`` a label may name a prediction that another worker answered but
has not written to the log yet (each writes once per flush interval). The worker
that got the label then asks its siblings to write now
(:class:`~modelyard.monitor.logpeers.LogPeers`: a datagram to each, answered after
their next write) and looks once more when all have written: a label for a
prediction any worker logged is stored, and an id none logged (never served,
sampled out) is refused within a write's time, not after the flush interval plus
slack that a label used to be held (:func:`settle_s`, still the bound when a
sibling does not confirm). Chosen over the alternatives because it costs nothing
per prediction, only per label whose id is not written yet: sharing the unwritten
ids between processes would put a shared store on every prediction's path, and
ids that carry their issue time (UUIDv7-like) would help only ids the server
mints, not the ``x-request-id`` a client sends.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from modelyard.monitor.feedback import (
    FeedbackError,
    Label,
    UnknownIds,
    parse_labels,
    read_labelled,
    record_feedback,
)
from modelyard.monitor.logpeers import LOG_PEERS_ENV, LogPeers
from modelyard.monitor.performance import score
from modelyard.serve.errors import ClientError, Unavailable
from modelyard.serve.metrics import ServerMetrics

if TYPE_CHECKING:
    from modelyard.serve.monitoring import ServingMonitor
    from modelyard.serve.runtime import LoadedModel

logger = logging.getLogger("modelyard.serve")

LIVE_WINDOW = 1000
"""Newest labelled predictions the live-accuracy gauges score."""

WRITE_SLACK_S = 2.0
"""How long past its flush interval a busy server process may take to write what it
logged (summaries and the insert, on a loaded machine or a remote database)."""

RETRY_EVERY_S = 0.2
"""How often a held label's unknown ids are looked for again."""


def settle_s(workers: int, flush_interval_s: float) -> float:
    """How long, at most, a label for an id the log does not hold yet is held.

    One process knows every id it logged (written or not), so it refuses at once.
    With ``--workers N`` the prediction may have been answered by another process,
    whose log writes it within its flush interval (plus :data:`WRITE_SLACK_S`): a
    label that arrived sooner must wait for that write, not get a false 422. In
    practice the siblings are asked to write at once (see the module's docstring),
    and this window is the bound only when one of them does not confirm (its
    database write failed, or it is too busy to answer in time).
    """
    return 0.0 if workers <= 1 else flush_interval_s + WRITE_SLACK_S


def log_peers(monitor: ServingMonitor) -> LogPeers | None:
    """The sibling workers' logs, with ``--workers N`` (the parent sets the folder);
    None for one process, without a log, or where the socket cannot be made (then
    labels for ids not yet written wait out :func:`settle_s`)."""
    folder = os.environ.get(LOG_PEERS_ENV)
    if monitor.settings.workers <= 1 or not folder or monitor.log is None:
        return None
    try:
        return LogPeers(folder, monitor.log)
    except OSError as error:
        logger.warning(
            "cannot reach the other workers' prediction logs (%s): a label for an id "
            "that is not logged yet is held up to %.1f s",
            error,
            settle_s(monitor.settings.workers, monitor.settings.log_flush_interval_s),
        )
        return None


class FeedbackService:
    def __init__(self, monitor: ServingMonitor, metrics: ServerMetrics) -> None:
        self.monitor = monitor
        settings = monitor.settings
        self.settle_s = settle_s(settings.workers, settings.log_flush_interval_s)
        self.peers = log_peers(monitor)
        self.live_accuracy = metrics.state_gauge(
            "modelyard_live_accuracy",
            f"Accuracy of the newest (up to {LIVE_WINDOW}) predictions that got feedback labels",
            ["model", "version"],
        )
        self.labelled = metrics.state_gauge(
            "modelyard_live_accuracy_labels",
            "Labelled predictions behind modelyard_live_accuracy",
            ["model", "version"],
        )
        self.test_accuracy = metrics.state_gauge(
            "modelyard_test_accuracy",
            "The served bundle's accuracy on its test split (offline, at training)",
            ["model", "version"],
        )

    def close(self) -> None:
        """Stop answering the siblings' requests to write. Called after the log is
        closed: until then a sibling's request is answered (False while stopping, so
        the asker holds its label for the window rather than refusing it)."""
        if self.peers is not None:
            self.peers.close()

    def show_test_accuracy(self, model: LoadedModel) -> None:
        metrics = model.bundle.metrics
        accuracy = metrics.get("test_accuracy", metrics.get("accuracy"))
        if accuracy is not None:
            self.test_accuracy.labels(model.name, model.version).set(float(accuracy))

    async def accept(self, model: LoadedModel, body: Any) -> dict[str, Any]:
        """Parse, check and store one feedback request; 4xx naming what was wrong."""
        if self.monitor.log is None:
            raise ClientError(
                "this server does not log predictions (log_predictions=false), so feedback "
                "has nothing to join with",
                status=409,
            )
        try:
            labels = parse_labels(body)
        except FeedbackError as error:
            raise ClientError(str(error), status=422) from None
        loop = asyncio.get_running_loop()
        try:
            stored = await self._store_when_logged(model, labels)
        except FeedbackError as error:
            raise ClientError(str(error), status=422) from None
        except Exception as error:  # the database is down: the client may retry
            logger.warning("feedback not stored: %s", error)
            raise Unavailable("the prediction log is unreachable; retry shortly") from None
        self.show_test_accuracy(model)
        try:
            await loop.run_in_executor(None, self.refresh, model)
        except Exception as error:  # the gauges are best effort; the labels are stored
            logger.warning("live accuracy not updated: %s", error)
        return {"stored": stored}

    async def _store_when_logged(self, model: LoadedModel, labels: list[Label]) -> int:
        """Store ``labels``; while their unknown ids may still be in another worker's
        unwritten log, ask the siblings to write (:class:`LogPeers`) and look once
        more, or, failing that, hold them (on the event loop, no thread) and look
        again until :func:`settle_s` has passed.

        Within that same window a database error is tried again too: with several
        workers on one SQLite log, another worker's write can make a store fail with
        "database is locked" for a moment. A database that stays down is reported."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle_s
        asked = False  # the siblings were asked to write their logs
        written = False  # ... and each wrote all it logged before this label came
        while True:
            try:
                return await loop.run_in_executor(None, self._store, model, labels)
            except UnknownIds:
                if written:
                    raise
                if self.peers is not None and not asked:
                    asked = True
                    written = await self._siblings_wrote(deadline - loop.time())
                    if written:
                        continue  # look once more: what is missing now was never logged
                if loop.time() + RETRY_EVERY_S > deadline:
                    raise
            except FeedbackError:  # a bad label: no wait changes it
                raise
            except Exception as error:  # a transient database error, or a down database
                if loop.time() + RETRY_EVERY_S > deadline:
                    raise
                logger.info("feedback store failed, trying again: %s", error)
            await asyncio.sleep(RETRY_EVERY_S)

    async def _siblings_wrote(self, timeout_s: float) -> bool:
        """Whether every sibling worker wrote its log within ``timeout_s`` when asked;
        False (so the label waits out the window) on any failure of the asking."""
        assert self.peers is not None
        try:
            return await self.peers.flush(max(0.0, timeout_s))
        except Exception:
            logger.warning("could not ask the other workers to write", exc_info=True)
            return False

    def _store(self, model: LoadedModel, labels: list[Label]) -> int:
        assert self.monitor.log is not None
        return record_feedback(
            self.monitor.log.engine,
            model.name,
            labels,
            list(model.bundle.labels),
            pending=self.monitor.recently_logged,
        )

    def refresh(self, model: LoadedModel) -> None:
        """Score the newest labelled predictions of every version and set the gauges.

        Writes what the log holds first (a second's worth at most), so labels for
        requests answered a moment ago count at once.
        """
        assert self.monitor.log is not None
        self.monitor.flush_queued()  # queued on the event loop -> the log's buffer
        self.monitor.log.flush(timeout_s=2.0)
        engine = self.monitor.log.engine
        labelled = read_labelled(engine, model.name, last=LIVE_WINDOW)
        for version in sorted(set(labelled.versions)):
            rows = [i for i, v in enumerate(labelled.versions) if v == version]
            scores = score(
                [labelled.predicted[i] for i in rows], [labelled.actual[i] for i in rows]
            )
            self.live_accuracy.labels(model.name, version).set(scores.accuracy)
            self.labelled.labels(model.name, version).set(scores.n)
