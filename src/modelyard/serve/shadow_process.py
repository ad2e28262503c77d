"""The server's side of a shadow that runs in its own process (``shadow_process=true``,
the default; the child is :mod:`modelyard.serve.shadow_child`).

The event loop does what it does for the in-process shadow (:class:`Shadow`, the
admission both share): draws the sample, checks the bound, appends the work to a
deque. The shadow's thread here then only joins each batch's inputs into one array
and sends it down a pipe, one message per batch of up to ``MESSAGE_BATCHES`` main
batches' worth of requests (the server's cost is per message); the model call, the
rows' summaries and their writes to the log happen in the child, under
``SCHED_IDLE`` (or at ``shadow_nice``). A reading thread counts what the child
reports (outcomes, the rows its log dropped, the version it loaded) in this
server's metrics, so ``/metrics`` shows the shadow as before.

The bound (``shadow_queue``) counts the requests queued here and those sent and not
yet reported back: a child that falls behind (``SCHED_IDLE``, whenever the main path
wants the CPU) leaves them in flight, and the server drops new work at
:meth:`Shadow.admit` and counts it, before anything is built for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from modelyard.monitor.predlog import name_os_thread
from modelyard.serve import shadow_child
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.monitoring import QueuedRow, ServingMonitor
from modelyard.serve.settings import ServeSettings
from modelyard.serve.shadow import THREAD_NAME, Shadow, ShadowWork
from modelyard.serve.shadow_child import ShadowBatch, ShadowModel, send_batch

logger = logging.getLogger("modelyard.serve")

START_TIMEOUT_S = 300.0
"""How long the server waits at startup for the child's first load (loaded or not)."""

MESSAGE_BATCHES = 4
"""Main batches' worth of requests one message to the child may carry (at most
``shadow_queue``). Each message costs the server per message, not per request: the
sending thread's wake-up, pickling and send, the reading thread's receipt of its
report, and the GIL hand-offs each of those asks of the event loop."""

MESSAGE_LINGER_S = 0.02
"""The sending thread's wait for more requests to join a message: at saturation a
message fills (``MESSAGE_BATCHES`` batches) in about this long. The child's answers
are waited for by no client, so 20 ms costs none of them anything."""


PIPE_BYTES = 1 << 20
"""What the pipe to the child holds (Linux's default is 64 KiB; 1 MiB is what an
unprivileged process may ask, ``/proc/sys/fs/pipe-max-size``). A message of 128
MNIST-sized requests is ~400 KB: in a 64 KiB pipe its write wakes the child and waits
for it ~7 times, and the child runs idle; here it goes in at once."""


def _widen(pipe: int) -> None:
    """Ask for a :data:`PIPE_BYTES` pipe (Linux); elsewhere, or refused, it stays."""
    try:
        import fcntl
    except ImportError:  # not Unix
        return
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe, set_size, PIPE_BYTES)


def _joined(observed: list[Any]) -> Any:
    """The requests' observed inputs as one array when they are arrays of one dtype
    (images: one buffer to pickle, not one per request), else the list as it is."""
    first = observed[0]
    if isinstance(first, np.ndarray) and all(
        isinstance(one, np.ndarray) and one.dtype == first.dtype for one in observed
    ):
        return np.concatenate(observed)
    return observed


def _wait(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for ``process`` to end."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout_s)


class ShadowProcess(Shadow):
    """A :class:`Shadow` whose model and log rows live in a child process: no model
    runtime in the server."""

    switch_interval_s = None  # no shadow Python per answer here (SWITCH_INTERVAL_S)

    def __init__(self, settings: ServeSettings, metrics: ServerMetrics, monitor: ServingMonitor):
        super().__init__(settings, metrics, monitor)
        self.settings = settings
        self.max_rows = min(settings.shadow_queue, MESSAGE_BATCHES * settings.max_batch_size)
        self.linger_s = MESSAGE_LINGER_S
        self.model: ShadowModel | None = None
        """The version the child reported loaded (None: none, or not yet told)."""
        self.in_flight = 0
        """Requests sent to the child and not yet reported back."""
        self._flight_lock = threading.Lock()
        self._told = threading.Event()  # the child reported its first load
        self._process: subprocess.Popen[bytes] | None = None
        self._outbox: Connection | None = None
        self._reader: threading.Thread | None = None

    # -- the hooks Shadow.admit and Shadow.offer use --------------------------------

    def _loaded(self) -> bool:
        return self.model is not None

    def _waiting(self) -> int:
        return len(self.pending) + self.in_flight

    def _log_has_room(self, waiting: int) -> bool:
        return True  # the child's own log: it checks before computing (log_full)

    def _shared_row(self, work: ShadowWork) -> QueuedRow | None:
        return None  # the child summarises its rows itself

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        # A fresh interpreter (no fork of a threaded server), started with an
        # environment of its own (shadow_child.child_env) and the settings as its first
        # message.
        inbox, to_child = os.pipe()
        _widen(to_child)
        from_child, outbox = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-c", shadow_child.COMMAND, str(inbox), str(outbox)],
            pass_fds=(inbox, outbox),
            stdin=subprocess.DEVNULL,  # it reads nothing there (a terminal's is the server's)
            env=shadow_child.child_env(dict(os.environ)),
        )
        os.close(inbox)  # the child's ends: EOF reaches each side when the other goes
        os.close(outbox)
        self._outbox = Connection(to_child, readable=False)
        replies = Connection(from_child, writable=False)
        self._outbox.send(self.settings)
        self._reader = threading.Thread(
            target=self._read, args=(replies,), name=f"{THREAD_NAME}-reports", daemon=True
        )
        self._reader.start()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._told.wait, START_TIMEOUT_S)
        self._start_worker()

    def _run(self, items: list[tuple[ShadowWork, QueuedRow | None]]) -> None:
        """Send one batch to the child (on the shadow's thread here)."""
        model = self.model
        if model is None or self._outbox is None:
            self._count("skipped", len(items))
            return
        alike: dict[int, bool] = {}  # per main spec object: compared once a batch
        batches = []
        for work, _ in items:
            spec = work.main.spec
            same = alike.get(id(spec))
            if same is None:
                same = alike[id(spec)] = spec == model.spec
            batches.append(work.batch if same else work.decode(model))  # type: ignore[arg-type]  # decode reads name, spec and modality only
        model_input = np.concatenate([batch.model_input for batch in batches])
        if all(batch.observed is batch.model_input for batch in batches):
            observed = model_input  # float images, tabular rows: sent once
        else:
            observed = _joined([batch.observed for batch in batches])
        message = ShadowBatch(
            [work.request_id for work, _ in items],
            [len(batch.model_input) for batch in batches],
            model_input,
            observed,
            [work.rule for work, _ in items],
        )
        with self._flight_lock:
            self.in_flight += len(items)
        try:
            send_batch(self._outbox, message)  # a full pipe blocks here, not the event loop
        except BaseException as error:  # not sent: never counted against the bound
            with self._flight_lock:
                self.in_flight -= len(items)
            if not isinstance(error, (OSError, ValueError)):
                raise  # _work counts them as failed
            self._count("failed", len(items))  # the child is gone

    def _read(self, replies: Any) -> None:
        """The reading thread: count what the child reports, until it is gone."""
        name_os_thread(THREAD_NAME)
        while True:
            try:
                message = replies.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "model":
                self.model = message[1]
                if self.model is not None:
                    self._show(self.model)
                self._told.set()
            elif kind == "outcomes":
                _, outcomes, requests, log_dropped = message
                with self._flight_lock:
                    self.in_flight -= requests
                for outcome, count in outcomes.items():
                    self._count(outcome, count)
                self._log_dropped(log_dropped)
            elif kind == "closed":  # every row written (or counted as dropped)
                self._log_dropped(message[1])
        if not self._stopping:
            logger.error("the shadow's process ended; the shadow is off until a restart")
        self.model = None  # nothing takes new work once the child is gone
        self._told.set()
        replies.close()

    def _log_dropped(self, rows: int) -> None:
        """Rows the child's log dropped: all a shadow's, counted as the server's log's."""
        if rows:
            self.monitor.dropped.inc(rows)
            self.monitor.shadow_dropped.inc(rows)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Send the queued work, tell the child to stop, and wait while it writes its
        rows (a graceful stop loses none of them)."""
        deadline = time.monotonic() + timeout_s
        worker = self._worker
        while self.pending and worker is not None and worker.is_alive():
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.01)
        self._stopping = True
        self._wake.set()
        loop = asyncio.get_running_loop()
        if worker is not None:
            await loop.run_in_executor(None, worker.join, 5.0)
        process = self._process
        if process is None:
            return
        if self._outbox is not None and (worker is None or not worker.is_alive()):
            with contextlib.suppress(OSError, ValueError):
                self._outbox.send(("stop",))
            self._outbox.close()
        elif self._outbox is not None:
            # Still blocked sending a batch (the child stopped reading): a stop now could
            # land inside that batch, and closing the pipe under the sender is unsafe.
            # The child is waited for, then ended, below.
            logger.error("the shadow's process stopped reading; it gets no stop message")
        # the child's log gets as long as the server's own to write what it holds
        limit = self.settings.log_stop_timeout_s + timeout_s
        await loop.run_in_executor(None, _wait, process, limit)
        if process.poll() is None:
            logger.error("the shadow's process did not stop within %.0f s; ended", limit)
            process.kill()
            await loop.run_in_executor(None, _wait, process, 5.0)
        if self._reader is not None:
            await loop.run_in_executor(None, self._reader.join, 5.0)
