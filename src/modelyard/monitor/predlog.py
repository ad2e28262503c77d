"""The prediction logger: a bounded in-memory buffer written in batches by a thread.

The request path only appends arrays to the buffer (no I/O, no per-row Python
objects); a background thread turns them into rows and inserts them every
``flush_interval_s``. So a slow or unreachable database never slows or fails a
request: while it is down, records wait in the buffer and are retried; once the
buffer is full, new records are dropped and counted (``on_dropped``).
``close()`` writes everything still buffered; after a SIGKILL at most the records
of the last flush interval are lost. With SQLite, a second thread copies the WAL into
the database file (:data:`CHECKPOINT_THREAD_NAME`): a write never waits for that
checkpoint's fsync. ``flush_then`` asks for a write now and says when
it is done; :mod:`modelyard.monitor.logpeers` lets a ``--workers N`` server process ask
the others.

Input-kind agnostic: callers pass summaries they computed (``image_summaries``,
``text_summaries``) and the embedding already projected with the bundle's
reference profile projection.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy.exc import DataError, IntegrityError

from modelyard.monitor.logstore import (
    checkpoint,
    create_log_engine,
    encode_json,
    ensure_schema,
    write_rows,
)

logger = logging.getLogger("modelyard.monitor")


@dataclass(frozen=True)
class _Batch:
    """One ``record`` call: ``rows`` predictions, kept as arrays until the flush."""

    time: float
    model: str
    version: str
    kind: str
    request_ids: Sequence[str]
    summaries: dict[str, np.ndarray]
    projection: np.ndarray
    labels: Sequence[str]
    confidences: np.ndarray
    latencies: np.ndarray
    raw_inputs: Sequence[bytes] | None
    role: str | None
    top_labels: Sequence[str | None] | None = None

    @property
    def rows(self) -> int:
        return len(self.labels)

    def to_rows(self) -> list[tuple[Any, ...]]:
        """One tuple per prediction, in :data:`ROW_COLUMNS` order, JSON encoded; without
        ``top_label`` unless the batch has top labels (NULL costs a parameter a row)."""
        names = list(self.summaries)
        columns = [_json_floats(self.summaries[n]) for n in names]
        projection = _json_floats(np.round(np.asarray(self.projection, dtype=np.float64), 6))
        confidences = _json_floats(self.confidences)
        latencies = _json_floats(self.latencies)
        raw = self.raw_inputs
        rows: list[tuple[Any, ...]] = [
            (
                self.time,
                self.model,
                self.version,
                self.request_ids[i],
                self.kind,
                self.labels[i],
                confidences[i],
                latencies[i],
                encode_json({n: column[i] for n, column in zip(names, columns, strict=True)}),
                encode_json(projection[i]),
                raw[i] if raw is not None else None,
                self.role,
            )
            for i in range(self.rows)
        ]
        top = self.top_labels
        if top is not None:
            rows = [(*row, label) for row, label in zip(rows, top, strict=True)]
        return rows


def _json_floats(values: np.ndarray) -> list[Any]:
    """Floats as lists, NaN/Inf as None: PostgreSQL's JSON refuses NaN, and one bad
    value must not get a whole batch of other requests' records refused."""
    array = np.asarray(values, dtype=np.float64)
    listed: list[Any] = array.tolist()
    bad = ~np.isfinite(array)
    if bad.any():
        flat: list[Any] = array.ravel().tolist()
        for index in np.flatnonzero(bad):
            flat[int(index)] = None
        listed = np.array(flat, dtype=object).reshape(array.shape).tolist()
    return listed


THREAD_NAME = "modelyard-log"
"""The log thread's name, in Python and (on Linux) for the OS: ``top -H``, ``ps -L``
and /proc show which thread of a server is the log's."""


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` (at most 15 bytes) where the OS shows it, on
    Linux; elsewhere nothing. Python 3.11 names threads for itself only."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


CHECKPOINT_THREAD_NAME = "modelyard-ckpt"
"""The thread that checkpoints a SQLite log's WAL into the database file, apart from
the log thread. SQLite's automatic checkpoint ran inside the commit that crossed
1,000 WAL pages, about once a second at 5,000-11,000 answers/s, fsync included: on
this VM's disk that commit usually took ~10 ms but sometimes 0.2-0.7 s (the thread in
``ext4_sync_file``), while the answers kept coming. Not ``modelyard-log...``: tools find
the log thread by that prefix."""

CHECKPOINT_INTERVAL_S = 0.5
"""Least time between two checkpoints (one follows the first write after it): the WAL
holds about this long's rows, plus those written while a slow checkpoint runs."""

SHADOW_SHARE = 0.75
"""Share of the buffer a shadow's rows may fill; the rest is kept for the rows of
answers clients got (main, canary). At ``shadow_rate=1.0`` a log that falls behind
(SQLite at ~9,000 answers/s on 2 cores) fills with both; without the reserve it
dropped main rows as often as shadow ones, and drift checks read the main rows."""

WRITE_RETRY_PAUSES_S = (0.05, 0.1, 0.2, 0.4)
"""Pauses before each retry of a write someone waits on (``flush_then``)."""


class PredictionLogger:
    """Log predictions to SQL off the request path. ``start()`` before, ``close()`` after."""

    def __init__(
        self,
        url: str | None = None,
        *,
        flush_interval_s: float = 1.0,
        capacity: int = 10_000,
        sample_rate: float = 1.0,
        store_inputs: bool = False,
        close_timeout_s: float = 10.0,
        on_dropped: Callable[[int], None] | None = None,
        on_shadow_dropped: Callable[[int], None] | None = None,
        collect: Callable[[], None] | None = None,
        write_through: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 record, got {capacity}")
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be within 0..1, got {sample_rate}")
        self.engine = create_log_engine(url, checkpoint_on_commit=False)
        self.flush_interval_s = flush_interval_s
        self.capacity = capacity
        self.sample_rate = sample_rate
        self.store_inputs = store_inputs
        self.close_timeout_s = close_timeout_s
        self._on_dropped = on_dropped
        # Also told of the shadow's rows among them (dropped first: see SHADOW_SHARE).
        self._on_shadow_dropped = on_shadow_dropped
        # Called on the log thread before each write: the server hands over the
        # predictions it queued cheaply on the request path, summarised here in bulk.
        self._collect = collect
        self.write_through = write_through
        """Runs each database write (the transaction, not the encoding of its rows,
        which stays on the log thread) and raises what it raised; None: the log thread
        runs it. The shadow's process runs its writes on a thread at the server's
        priority, so an idle writer never sits preempted holding SQLite's write lock."""
        self._buffer: deque[_Batch] = deque()
        self._buffered = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._schema_ready = False
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._written_since_checkpoint = threading.Event()
        self._stop_checkpoints = threading.Event()
        self._last_warning = 0.0
        self._last_checkpoint_warning = 0.0
        # Called after the next write (True) or when it failed (False): see flush_then.
        self._after_write: list[Callable[[bool], None]] = []
        self.written = 0
        """Records written so far."""
        self.dropped = 0
        """Records dropped (buffer full, or still unwritten when ``close`` gave up)."""

    @property
    def buffered(self) -> int:
        """Records waiting to be written."""
        return self._buffered

    def limit(self, role: str | None) -> int:
        """Records the buffer may hold once ``role``'s are added: all of its capacity
        for the answers clients got, :data:`SHADOW_SHARE` of it for a shadow's, so
        that when the database falls behind the shadow's rows are dropped first."""
        if role == "shadow":
            return self.capacity - int(self.capacity * (1.0 - SHADOW_SHARE))
        return self.capacity

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the prediction logger is already started")
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()
        if self.engine.dialect.name == "sqlite":
            self._checkpointer = threading.Thread(
                target=self._checkpoint_forever, name=CHECKPOINT_THREAD_NAME, daemon=True
            )
            self._checkpointer.start()

    def should_log(self) -> bool:
        """Whether to log this request (the sample rate); ask before computing summaries."""
        return self.sample_rate >= 1.0 or random.random() < self.sample_rate

    def record(
        self,
        model: str,
        version: str,
        request_ids: Sequence[str],
        summaries: dict[str, np.ndarray],
        projection: np.ndarray,
        labels: Sequence[str],
        confidences: np.ndarray,
        latency_s: float | np.ndarray,
        *,
        kind: str = "image",
        raw_inputs: Sequence[bytes] | None = None,
        role: str | None = "main",
        top_labels: Sequence[str | None] | None = None,
    ) -> int:
        """Buffer one row per prediction; returns the rows accepted (0 when dropped).

        Never blocks on the database and never raises for a full buffer. Every
        argument holds one entry per row; ``raw_inputs`` is kept only when the
        logger was configured with ``store_inputs``. ``role`` says which of a server's
        aliases answered (main, canary, shadow); a shadow's rows may fill only
        :meth:`limit` of the buffer. ``labels`` are the served labels;
        ``top_labels`` the model's top class where it differs (None elsewhere, or no
        list when every row was served its top class).
        """
        rows = len(labels)
        if rows == 0:
            return 0
        for name, values in (
            ("request_ids", request_ids),
            ("projection", projection),
            ("confidences", confidences),
            *(() if top_labels is None else (("top_labels", top_labels),)),
            *summaries.items(),
        ):
            if len(values) != rows:
                raise ValueError(f"{name} has {len(values)} entries for {rows} labels")
        latencies = np.broadcast_to(np.asarray(latency_s, dtype=np.float64), (rows,))
        batch = _Batch(
            time.time(),
            model,
            version,
            kind,
            request_ids,
            summaries,
            projection,
            labels,
            confidences,
            latencies,
            raw_inputs if self.store_inputs else None,
            role,
            top_labels,
        )
        with self._lock:
            if self._closing or self._buffered + rows > self.limit(role):
                self.dropped += rows
                dropped = True
            else:
                self._buffer.append(batch)
                self._buffered += rows
                dropped = False
        if dropped:
            if self._on_dropped is not None:
                self._on_dropped(rows)
            if role == "shadow" and self._on_shadow_dropped is not None:
                self._on_shadow_dropped(rows)
            return 0
        return rows

    def wake(self) -> None:
        """Write now rather than at the next interval (the buffer's owner has enough
        rows for one write; waiting longer only grows memory and the write's GIL hold)."""
        self._wake.set()

    def flush_then(self, done: Callable[[bool], None]) -> None:
        """Write now everything logged so far, without waiting: ``done(True)`` is called
        on the log thread once it is written (or refused by the database: it never
        will be), ``done(False)`` when that write fails or the log is stopping.

        Requests that arrive during one write are all answered by the next one."""
        with self._lock:
            stopping = self._closing
            if not stopping:
                self._after_write.append(done)
        if stopping:
            done(False)
        else:
            self._wake.set()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Ask for a write now and wait until the buffer is empty; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._buffered and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.01)
        return self._buffered == 0

    def close(self) -> None:
        """Stop taking records and write everything buffered (up to ``close_timeout_s``)."""
        with self._lock:
            self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.close_timeout_s + self.flush_interval_s + 5)
        with self._lock:
            lost, self._buffered = self._buffered, 0
            self._buffer.clear()
            unanswered, self._after_write = self._after_write, []
        self._answer(unanswered, False)
        if lost:
            self.dropped += lost
            if self._on_dropped is not None:
                self._on_dropped(lost)
            logger.error("prediction log: %d records could not be written before stopping", lost)
        if self._checkpointer is not None:
            self._stop_checkpoints.set()
            self._written_since_checkpoint.set()
            self._checkpointer.join(self.close_timeout_s)
            self._checkpoint()  # what the last writes left in the WAL
        self.engine.dispose()

    def _checkpoint_forever(self) -> None:
        """Checkpoint after writes, at most every :data:`CHECKPOINT_INTERVAL_S`, until
        the log closes (which checkpoints once more itself)."""
        name_os_thread(CHECKPOINT_THREAD_NAME)
        stop = self._stop_checkpoints
        while not stop.is_set():
            self._written_since_checkpoint.wait()
            if stop.is_set():
                return
            self._written_since_checkpoint.clear()
            self._checkpoint()
            stop.wait(CHECKPOINT_INTERVAL_S)

    def _checkpoint(self) -> None:
        """One checkpoint, through ``write_through`` where there is one: the shadow's
        process runs it on its write lane too, since a checkpoint holds SQLite's
        checkpoint lock through its copy and fsync, and an idle thread preempted there
        would leave the server's checkpoints finding it taken and the WAL growing."""
        try:
            if self.write_through is None:
                checkpoint(self.engine)
            else:
                self.write_through(partial(checkpoint, self.engine))
        except Exception as error:  # a busy or missing database: the next one catches up
            now = time.monotonic()
            if now - self._last_checkpoint_warning > 30:
                logger.warning("prediction log checkpoint failed (will retry): %s", error)
                self._last_checkpoint_warning = now

    def _run(self) -> None:
        name_os_thread(THREAD_NAME)
        while not self._closing:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            with self._lock:  # taken first: this write holds all they asked for
                asked, self._after_write = self._after_write, []
            self._collect_deferred()
            written = self._write_buffered()
            if asked and not written:
                written = self._write_again_for_askers()
            self._answer(asked, written)
        deadline = time.monotonic() + self.close_timeout_s
        # Graceful stop: keep trying while the database is briefly unreachable.
        while self._buffered and time.monotonic() < deadline:
            if not self._write_buffered():
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def _write_again_for_askers(self) -> bool:
        """Retry a failed write a few times within about a second when someone waits
        on it (:meth:`flush_then`). Several server processes on one SQLite file, all
        asked to write at once, make each other's writes fail with "database is
        locked" for a moment; answering False then would make the asker hold its
        label for the whole settle window. A database that is down still fails."""
        for pause_s in WRITE_RETRY_PAUSES_S:
            time.sleep(pause_s)
            if self._closing:
                return False
            if self._write_buffered():
                return True
        return False

    @staticmethod
    def _answer(asked: list[Callable[[bool], None]], written: bool) -> None:
        for done in asked:
            try:
                done(written)
            except Exception:  # the log thread must survive a bad callback
                logger.exception("prediction log: a flush_then callback failed")

    def _collect_deferred(self) -> None:
        if self._collect is None:
            return
        try:
            self._collect()
        except Exception:  # the log thread must survive a bad hand-over
            logger.exception("prediction log: collecting deferred records failed")

    def _write_buffered(self) -> bool:
        """Write a snapshot of the buffer; on failure keep it for the next attempt."""
        with self._lock:
            batches = list(self._buffer)
        if not batches:
            return True
        try:
            rows = [row for batch in batches for row in batch.to_rows()]
            write = partial(self._write_rows, rows)
            if self.write_through is None:
                write()
            else:
                self.write_through(write)
        except (DataError, IntegrityError, TypeError, ValueError) as error:
            # The rows themselves are refused: retrying would block the log forever.
            logger.error(
                "prediction log dropped %d records the database refused: %s",
                sum(b.rows for b in batches),
                error,
            )
            self._forget(batches, dropped=True)
            return True
        except Exception as error:  # the database is down or refuses: retry later
            now = time.monotonic()
            if now - self._last_warning > 30:  # one line per 30 s, not one per flush
                logger.warning("prediction log write failed (will retry): %s", error)
                self._last_warning = now
            return False
        self._forget(batches, dropped=False)
        self._written_since_checkpoint.set()
        return True

    def _write_rows(self, rows: list[tuple[Any, ...]]) -> None:
        if not self._schema_ready:
            ensure_schema(self.engine)
            self._schema_ready = True
        write_rows(self.engine, rows)

    def _forget(self, batches: list[_Batch], dropped: bool) -> None:
        rows = sum(batch.rows for batch in batches)
        with self._lock:
            for _ in batches:  # record() only appends, so these are still the oldest
                self._buffer.popleft()
            self._buffered -= rows
            if dropped:
                self.dropped += rows
            else:
                self.written += rows
        if dropped and self._on_dropped is not None:
            self._on_dropped(rows)
