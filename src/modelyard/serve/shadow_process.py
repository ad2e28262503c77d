"""The server's side of a shadow that runs in its own process (``shadow_process=true``,
the default; the child is :mod:`modelyard.serve.shadow_child`).

The event loop does what it does for the in-process shadow (:class:`Shadow`, the
admission both share): draws the sample, checks the bound, appends the work to a
deque. Then, with no thread of its own here, the event loop joins the queued
requests' inputs into one array and writes them to a pipe, one message per batch of up
to ``MESSAGE_BATCHES`` main batches' worth of requests (the server's cost is per
message), without blocking: what the pipe cannot take waits for it to drain
(:class:`~modelyard.serve.frames.FrameWriter`). The model call, the rows' summaries
and their writes to the log happen in the child, under ``SCHED_IDLE`` (or at
``shadow_nice``). The loop also reads what the child reports (outcomes, the rows its
log dropped, the version it loaded) and counts it in this server's metrics, so
``/metrics`` shows the shadow as before.

Until 2026-12-07 two threads here sent the batches and read the reports. Each ran
Python per message, so each message handed the GIL back and forth with the event
loop: on the MNIST model ~1 context switch of the shadow's threads per answer, 25 us
of their CPU per answer (benchmarks/serving/RESULTS.md). The loop now spends that
Python itself, a few microseconds a request, and waits for no one.

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
import pickle
import subprocess
import sys
import time
from typing import Any

import numpy as np

from modelyard.serve import shadow_child
from modelyard.serve.frames import READ_BYTES, FrameReader, FrameWriter
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.monitoring import QueuedRow, ServingMonitor
from modelyard.serve.settings import ServeSettings
from modelyard.serve.shadow import Shadow, ShadowWork
from modelyard.serve.shadow_child import ShadowBatch, ShadowModel, batch_payloads

logger = logging.getLogger("modelyard.serve")

START_TIMEOUT_S = 300.0
"""How long the server waits at startup for the child's first load (loaded or not)."""

MESSAGE_BATCHES = 4
"""Main batches' worth of requests one message to the child may carry (at most
``shadow_queue``). Each message costs the event loop per message, not per request: a
timer, a pickled header, the writes, and the report to read back."""

MESSAGE_LINGER_S = 0.02
"""The wait for more requests to join a message: at saturation a
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
    runtime in the server, and no thread of the shadow's either (the event loop sends
    and reads)."""

    switch_interval_s = None  # no shadow Python in a thread here (SWITCH_INTERVAL_S)

    def __init__(self, settings: ServeSettings, metrics: ServerMetrics, monitor: ServingMonitor):
        super().__init__(settings, metrics, monitor)
        self.settings = settings
        self.max_rows = min(settings.shadow_queue, MESSAGE_BATCHES * settings.max_batch_size)
        self.linger_s = MESSAGE_LINGER_S
        self.model: ShadowModel | None = None
        """The version the child reported loaded (None: none, or not yet told)."""
        self.in_flight = 0
        """Requests sent to the child and not yet reported back."""
        self._process: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: FrameWriter | None = None
        self._reports = FrameReader()
        self._from_child: int | None = None
        self._told: asyncio.Future[None] | None = None  # the child reported its first load
        self._gone: asyncio.Future[None] | None = None  # its reports ended
        self._linger: asyncio.TimerHandle | None = None
        self._send_soon = False

    # -- the hooks Shadow.admit and Shadow.offer use --------------------------------

    def _loaded(self) -> bool:
        return self.model is not None

    def _waiting(self) -> int:
        return len(self.pending) + self.in_flight

    def _log_has_room(self, waiting: int) -> bool:
        return True  # the child's own log: it checks before computing (log_full)

    def _shared_row(self, work: ShadowWork) -> QueuedRow | None:
        return None  # the child summarises its rows itself

    def _queued(self) -> None:
        """After an append: send a full message on the loop's next turn, or wait up to
        ``linger_s`` for more to join it. Nothing is sent while the pipe is full: what
        queues meanwhile goes when it drains (:meth:`_drained`)."""
        writer, loop = self._writer, self._loop
        if writer is None or loop is None or writer.waiting:
            return
        if len(self.pending) >= self.max_rows:
            if not self._send_soon:  # after this answer is written, not before
                self._send_soon = True
                loop.call_soon(self._send, False)
        elif self._linger is None:
            self._linger = loop.call_later(self.linger_s, self._send)

    def _drained(self) -> None:
        if self.pending:
            self._queued()

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
        self.attach(asyncio.get_running_loop(), to_child, from_child)
        assert self._writer is not None and self._told is not None
        self._writer.write([pickle.dumps(self.settings, pickle.HIGHEST_PROTOCOL)])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._told), START_TIMEOUT_S)

    def attach(self, loop: asyncio.AbstractEventLoop, to_child: int, from_child: int) -> None:
        """Drive the pipes' server ends from ``loop``: batches go down ``to_child``, the
        child's reports come up ``from_child`` (both file descriptors are taken over)."""
        self._loop = loop
        self._writer = FrameWriter(loop, to_child, self._drained, self._lost)
        self._from_child = from_child
        self._told = loop.create_future()
        self._gone = loop.create_future()
        os.set_blocking(from_child, False)
        loop.add_reader(from_child, self._readable)

    def _send(self, everything: bool = True) -> None:
        """Send what is queued (or only full messages: the rest lingers), a message of
        up to ``max_rows`` requests at a time, while the pipe takes them whole (on the
        event loop)."""
        self._send_soon = False
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        writer, pending = self._writer, self.pending
        while writer is not None and not writer.waiting and pending:
            if not everything and len(pending) < self.max_rows:
                self._queued()  # the rest waits for more to join it
                return
            self._take(min(len(pending), self.max_rows))

    def _run(self, items: list[tuple[ShadowWork, QueuedRow | None]]) -> None:
        """Write one batch to the child's pipe (what does not fit goes when it drains)."""
        model = self.model
        if model is None or self._writer is None:
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
        payloads = batch_payloads(message)  # raises before anything counts: failed
        self.in_flight += len(items)  # before the write: a broken pipe cuts it there
        try:
            self._writer.write(payloads, len(items))
        except Exception:  # not sent (a closed loop): _take counts it failed, once
            self.in_flight -= len(items)
            raise

    def _lost(self, requests: int, error: OSError) -> None:
        """Requests whose message the child will never read whole: its pipe broke."""
        self._cut(requests)
        logger.debug("the shadow's pipe broke: %s", error)

    def _cut(self, requests: int) -> None:
        """Requests whose message was cut short: out of the bound, counted as failed."""
        self.in_flight -= requests
        if requests:
            self._count("failed", requests)

    def _readable(self) -> None:
        """The child's reports, counted here as they arrive (on the event loop)."""
        assert self._from_child is not None
        try:
            data = os.read(self._from_child, READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._ended()
            return
        try:
            for payload in self._reports.feed(data):
                self._report(pickle.loads(payload))
        except Exception as error:  # nothing after a report that cannot be read is sound
            logger.error("the shadow's reports cannot be read: %s", error)
            self._ended()

    def _report(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "model":
            self.model = message[1]
            if self.model is not None:
                self._show(self.model)
            _settle(self._told)
        elif kind == "outcomes":
            _, outcomes, requests, log_dropped = message
            self.in_flight -= requests
            for outcome, count in outcomes.items():
                self._count(outcome, count)
            self._log_dropped(log_dropped)
        elif kind == "closed":  # every row written (or counted as dropped)
            self._log_dropped(message[1])

    def _ended(self) -> None:
        """The child's reports ended: it is gone (or out of step), and takes no work."""
        if self._from_child is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._from_child)
        with contextlib.suppress(OSError):
            os.close(self._from_child)
        self._from_child = None
        if not self._stopping:
            logger.error("the shadow's process ended; the shadow is off until a restart")
        self.model = None  # nothing takes new work once the child is gone
        if self.pending:  # nor is what queued here ever sent: counted as _run counts it
            self._count("skipped", len(self.pending))
            self.pending.clear()
        if self._writer is not None:  # messages cut short: the child never reads them
            self._cut(self._writer.close())
        # Read whole by a child that ended before reporting them (killed, out of
        # memory): no report will come, so they leave the bound as failed.
        self._cut(self.in_flight)
        _settle(self._told)
        _settle(self._gone)

    def _log_dropped(self, rows: int) -> None:
        """Rows the child's log dropped: all a shadow's, counted as the server's log's."""
        if rows:
            self.monitor.dropped.inc(rows)
            self.monitor.shadow_dropped.inc(rows)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Send the queued work, tell the child to stop, and wait while it writes its
        rows (a graceful stop loses none of them)."""
        deadline = time.monotonic() + timeout_s
        writer = self._writer
        while writer is not None and (self.pending or writer.waiting) and self.model is not None:
            if time.monotonic() >= deadline:
                break
            if not writer.waiting:
                self._send()
            else:
                await asyncio.sleep(0.01)
        self._stopping = True
        if self._linger is not None:
            self._linger.cancel()
        if writer is not None:
            if writer.waiting:  # the child stopped reading: its pipe's end is its stop
                logger.error("the shadow's process stopped reading; it gets no stop message")
            else:
                writer.write([pickle.dumps(("stop",), pickle.HIGHEST_PROTOCOL)])
            self._cut(writer.close())  # messages cut short: the child never reads them
        process = self._process
        if process is None:
            return
        loop = asyncio.get_running_loop()
        # the child's log gets as long as the server's own to write what it holds
        limit = self.settings.log_stop_timeout_s + timeout_s
        await loop.run_in_executor(None, _wait, process, limit)
        if process.poll() is None:
            logger.error("the shadow's process did not stop within %.0f s; ended", limit)
            process.kill()
            await loop.run_in_executor(None, _wait, process, 5.0)
        if self._gone is not None:  # its last reports (the rows its log dropped) counted
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._gone), 5.0)


def _settle(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)
