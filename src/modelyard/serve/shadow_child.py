"""The shadow's own process (``shadow_process=true``): it loads and follows the shadow
alias, runs the batches the server sends it through the shadow's model, and writes
their rows to the prediction log itself, under ``SCHED_IDLE`` (``shadow_idle``; else
at ``shadow_nice``). The server starts it as a fresh interpreter (:data:`COMMAND`).

Everything here runs outside the server's interpreter: the model call, the rows'
summaries and the log's writes take no GIL the event loop needs, and under
``SCHED_IDLE`` the kernel gives the process only the CPU the server leaves idle, so at
saturation the shadow falls behind and the server drops (and counts) its work
instead of the main path slowing. The server's side (sending batches, counting what
comes back) is :mod:`modelyard.serve.shadow_process`.

Messages, one per batch, in order, on two one-way pipes:

- server -> here: the settings (:class:`ServeSettings`), then one batch message
  per batch (:func:`send_batch`: a small pickled header, then the arrays' raw
  bytes), then ``("stop",)`` on a graceful stop;
- here -> server: ``("model", ShadowModel | None)`` when the loaded version changes
  (and once after the first load, loaded or not), ``("outcomes", {outcome: n},
  requests, log_dropped)`` after each batch, and ``("closed", log_dropped)`` when
  every row is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.modality import modality_for
from modelyard.modality.base import Modality
from modelyard.serve.metrics import MULTIPROCESS_ENV
from modelyard.serve.settings import ServeSettings

logger = logging.getLogger("modelyard.serve")

COMMAND = "from modelyard.serve.shadow_child import run; run()"
"""What ``python -c`` runs, with the two pipes' file descriptors as arguments."""

PROCESS_NAME = "modelyard-shadow"
"""The process's name for the OS (``ps``, /proc): a shadow's CPU is told from the server's."""

WATCH_INTERVAL_S = 0.1
"""How often the loaded version is compared with the one the server was told of."""


@dataclass(frozen=True)
class ShadowModel:
    """What the server knows of the loaded shadow: enough to label its gauge and to
    decode a request afresh when the shadow reads inputs differently (``spec``)."""

    name: str
    version: str
    kind: str
    spec: Any
    modality: Modality[Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modality", modality_for(self.kind))

    def __reduce__(self) -> tuple[Any, ...]:  # the modality is found again, not pickled
        return (ShadowModel, (self.name, self.version, self.kind, self.spec))


@dataclass(slots=True)
class ShadowBatch:
    """One batch of answered requests for the shadow: each request's rows in
    ``model_input`` (``counts`` of them, in order), and what the log summarises of its
    inputs, ``observed``: one array joined like ``model_input`` (split per request
    here), or a list with one item per request."""

    ids: list[str]
    counts: list[int]
    model_input: np.ndarray
    observed: Any
    rules: list[Any]


_SAME = ("same",)
"""The observed inputs are the model's inputs (float images, tabular rows): sent once."""


def _part(value: Any) -> tuple[tuple[Any, ...], np.ndarray | None]:
    """How ``value`` travels: an array of numbers as its raw bytes after the header
    (``("raw", dtype, shape)``), anything else pickled in the header."""
    if isinstance(value, np.ndarray) and not value.dtype.hasobject:
        return ("raw", value.dtype.str, value.shape), np.ascontiguousarray(value)
    return ("inline", value), None


def _bytes_of(array: np.ndarray) -> memoryview:
    """A C-contiguous ``array``'s memory as flat bytes, a view (writable when it is);
    through numpy, which takes arrays with no elements too (``memoryview.cast`` refuses
    a zero in the shape)."""
    return array.reshape(-1).view(np.uint8).data


def batch_payloads(batch: ShadowBatch) -> list[bytes | memoryview]:
    """``batch`` as the payloads of its messages, in order: a pickled header, then each
    array's bytes as they lie in memory (what :func:`receive_batch` reads).

    Pickling the arrays cost the server's sending thread ~0.9 ms of CPU, holding the
    GIL, per message of 128 MNIST-sized requests, 7 us per answer (benchmarks/serving
    /RESULTS.md, 2026-12-07): protocol 4 copies an array into bytes and again into the
    pickle, and float images were sent twice, as inputs and as observed. Sent raw, and
    observed inputs that are the model's inputs not sent again, ~0.1 ms."""
    input_part, input_bytes = _part(batch.model_input)
    if batch.observed is batch.model_input:
        observed_part, observed_bytes = _SAME, None
    else:
        observed_part, observed_bytes = _part(batch.observed)
    header = ("batch", batch.ids, batch.counts, batch.rules, input_part, observed_part)
    payloads: list[bytes | memoryview] = [pickle.dumps(header, pickle.HIGHEST_PROTOCOL)]
    payloads += [_bytes_of(raw) for raw in (input_bytes, observed_bytes) if raw is not None]
    return payloads


def send_batch(connection: Connection, batch: ShadowBatch) -> None:
    """Send ``batch`` down ``connection`` (from one thread at a time)."""
    for payload in batch_payloads(batch):
        connection.send_bytes(payload)


def _receive_part(connection: Connection, part: tuple[Any, ...]) -> Any:
    if part[0] == "inline":
        return part[1]
    _, dtype, shape = part
    array = np.empty(shape, np.dtype(dtype))
    received = connection.recv_bytes_into(_bytes_of(array))  # longer: BufferTooShort
    if received != array.nbytes:  # another message where the bytes belonged
        raise ValueError(f"a shadow batch's array came as {received} bytes, not {array.nbytes}")
    return array


def receive_batch(connection: Connection, header: tuple[Any, ...]) -> ShadowBatch:
    """The batch whose ``header`` (a ``"batch"`` message) was just received: its arrays
    are read from ``connection`` now."""
    _, ids, counts, rules, input_part, observed_part = header
    model_input = _receive_part(connection, input_part)
    same = observed_part[0] == _SAME[0]
    observed = model_input if same else _receive_part(connection, observed_part)
    return ShadowBatch(ids, counts, model_input, observed, rules)


def lower_priority(nice: int, idle: bool = False, spare: Collection[int] = ()) -> bool:
    """Set every thread of this process but those in ``spare`` (native ids) to
    ``nice`` (Linux: a thread's own value) and, with ``idle``, to the ``SCHED_IDLE``
    policy: those that exist already (numpy's BLAS pool, started by the imports that
    read this process's arguments), and so, by inheritance, every one made later.
    Whether every such thread is ``SCHED_IDLE``."""
    tasks = Path("/proc/self/task")
    ids = [int(task.name) for task in tasks.iterdir()] if tasks.is_dir() else [0]
    made_idle = idle
    for thread_id in ids:
        if thread_id in spare:
            continue
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, thread_id, nice)
        if made_idle:
            try:
                os.sched_setscheduler(thread_id, os.SCHED_IDLE, os.sched_param(0))
            except ProcessLookupError:  # the thread ended since it was listed
                continue
            except (OSError, AttributeError):  # refused, or not Linux: the nice value
                made_idle = False
    return made_idle


WRITE_THREAD_NAME = "modelyard-write"
"""The OS name of the shadow's thread that runs its SQLite log's transactions."""


class WriteLane:
    """A thread that keeps the server's scheduling, to run the shadow's SQLite log
    transactions: a :class:`PredictionLogger` ``write_through``. Made before
    :func:`lower_priority` and spared by it.

    The server's log and this process's write to one SQLite file, and SQLite lets one
    writer at a time hold its lock, from the first insert to the commit. Under
    ``SCHED_IDLE`` (or nice 19) a writer is preempted whenever the server wants the
    CPU, at saturation for as long as it wants it: preempted inside a transaction, it
    held the lock while the server's writer waited up to 2.5 s (priority inversion,
    benchmarks/serving/log_writers.py). Here the transaction (a few ms per 512 rows)
    runs as the server's threads do, while the rows' encoding, most of the writer's
    CPU, stays on the log's idle thread. A thread that never leaves the server's
    priority needs no privilege: lifting an idle thread back for each write needed
    ``CAP_SYS_NICE``, which a container running as a user does not have."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=WRITE_THREAD_NAME)
        # Made now, at the caller's priority: a thread made later would inherit idle.
        self.thread_id = self._pool.submit(threading.get_native_id).result()

    def __call__(self, write: Callable[[], None]) -> None:
        """Run ``write`` on the lane and wait for it; its exception is raised here."""
        self._pool.submit(write).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def ignore_stop_signals() -> None:
    """Leave stopping to the server. Ctrl-C in a terminal (SIGINT) and systemd's default
    stop (SIGTERM to every process of the unit) reach this process as well as the
    server; obeyed here, they would end it with rows still queued for the log. The
    server instead sends ``("stop",)`` once it has stopped taking requests, and this
    process writes its rows and ends; if the server is killed, the closed pipe ends it
    the same way."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def child_env(environ: dict[str, str]) -> dict[str, str]:
    """The environment the server starts this process with: its own, less the metrics
    folder of ``--workers N`` (under either spelling prometheus_client reads), so
    prometheus_client is never imported here in multi-process mode: this process's
    metrics stay its own (the server counts what it reports; the folder would add
    them in a second time)."""
    return {key: value for key, value in environ.items() if key.upper() != MULTIPROCESS_ENV}


def run() -> None:
    """The process's entry point (:data:`COMMAND`): ``argv`` names the read end of the
    server's pipe and the write end of this process's; the settings come first."""
    inbox = Connection(int(sys.argv[1]), writable=False)
    outbox = Connection(int(sys.argv[2]), readable=False)
    main(inbox.recv(), inbox, outbox)


def main(settings: ServeSettings, inbox: Connection, outbox: Connection) -> None:
    """Run the shadow until the server says stop or is gone."""
    ignore_stop_signals()
    lane = WriteLane()  # made first: it keeps the server's priority
    idle = lower_priority(settings.shadow_nice, settings.shadow_idle, spare={lane.thread_id})
    from modelyard.monitor.predlog import name_os_thread

    name_os_thread(PROCESS_NAME)
    lane(partial(name_os_thread, WRITE_THREAD_NAME))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if settings.shadow_idle and not idle:
        logger.info("SCHED_IDLE refused here; the shadow runs at nice %d", settings.shadow_nice)
    try:
        asyncio.run(_serve(settings, inbox, outbox, lane))
    finally:
        lane.close()


class _Child:
    def __init__(
        self,
        settings: ServeSettings,
        inbox: Connection,
        outbox: Connection,
        write_lane: WriteLane | None = None,
    ) -> None:
        # Imported here, after the nice value is set: they are the heavy part.
        from modelyard.serve.metrics import ServerMetrics
        from modelyard.serve.monitoring import ServingMonitor
        from modelyard.serve.runtime import ModelRuntime
        from modelyard.serve.settings import second_alias_uri

        metrics = ServerMetrics()  # the server exports what matters, from the reports
        self.runtime = ModelRuntime(
            replace(
                settings,
                model=second_alias_uri(settings, settings.shadow),
                intra_op_threads=settings.shadow_threads,
                batch_workers=1,
            ),
            metrics,
            role="shadow",
        )
        self.monitor = ServingMonitor(replace(settings, drift_interval_s=0), metrics)
        log = self.monitor.log
        # SQLite only: PostgreSQL's inserts into one table do not wait on each other
        if log is not None and write_lane is not None and log.engine.dialect.name == "sqlite":
            log.write_through = write_lane
        self.inbox = inbox
        self.outbox = outbox
        self._send_lock = threading.Lock()
        self._told: object = None
        self._reported_drops = 0

    def send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock, contextlib.suppress(OSError):  # the server is gone
            self.outbox.send(message)

    def tell_model(self, first: bool = False) -> None:
        """Tell the server the loaded version, when it changed (or at the first load)."""
        model = self.runtime.current
        if model is self._told and not first:
            return
        self._told = model
        shown = None
        if model is not None:
            shown = ShadowModel(model.name, model.version, model.modality.kind, model.spec)
        self.send(("model", shown))

    def _new_drops(self) -> int:
        log = self.monitor.log
        dropped = 0 if log is None else log.dropped
        new, self._reported_drops = dropped - self._reported_drops, dropped
        return new

    def run_batch(self, batch: ShadowBatch) -> None:
        """One batch from the server: inferred and its rows queued for the log, or
        counted as what stopped it (nothing loaded, no room in the log, a failure)."""
        from modelyard.bundle import INPUT_NAME

        ids, counts, inputs, observed = batch.ids, batch.counts, batch.model_input, batch.observed
        if isinstance(observed, np.ndarray):  # joined by the server: one view each
            observed = np.split(observed, np.cumsum(counts)[:-1])
        requests = len(ids)
        model = self.runtime.current
        rows = sum(counts)
        if model is None:
            outcome = "skipped"
        elif self.monitor.log is not None and self.monitor.shadow_room() < rows:
            outcome = "log_full"  # the log fell behind: compute nothing it would drop
        else:
            try:
                started = time.perf_counter()
                results = model.session.run(None, {INPUT_NAME: inputs})  # type: ignore[attr-defined]  # onnxruntime ships no types
                latency = time.perf_counter() - started
                outputs = dict(zip(model.output_names, results, strict=True))
                logged: list[tuple[str, Any, dict[str, Any], None, Any]] = []
                start = 0
                for request_id, count, seen, rule in zip(
                    ids, counts, observed, batch.rules, strict=True
                ):
                    mine = {name: value[start : start + count] for name, value in outputs.items()}
                    logged.append((request_id, seen, mine, None, rule))
                    start += count
                self.monitor.observe_shadow(model, logged, latency)  # type: ignore[arg-type]  # rows as observe_shadow takes them
                outcome = "done"
            except Exception as error:  # reported as failed; the process keeps going
                logger.debug("shadow batch failed: %s", error)
                outcome = "failed"
        self.send(("outcomes", {outcome: requests}, requests, self._new_drops()))

    def read(self) -> None:
        """The reading thread: run each batch until a stop, or the server is gone."""
        while True:
            try:
                message = self.inbox.recv()
                if message[0] == "stop":
                    return
                batch = receive_batch(self.inbox, message)
            except (EOFError, OSError):  # the server is gone
                return
            except Exception as error:  # the stream is out of step: nothing after is sound
                logger.error("the shadow's process stops: a batch could not be read: %s", error)
                return
            self.tell_model()
            self.run_batch(batch)

    async def close(self) -> None:
        await self.runtime.close()
        await self.monitor.close()  # writes every queued row (up to log_stop_timeout_s)
        self.send(("closed", self._new_drops()))


async def _serve(
    settings: ServeSettings,
    inbox: Connection,
    outbox: Connection,
    write_lane: WriteLane | None = None,
) -> None:
    child = _Child(settings, inbox, outbox, write_lane)
    await child.runtime.start_optional()
    await child.monitor.start(child.runtime)
    child.tell_model(first=True)
    reader = threading.Thread(target=child.read, name=PROCESS_NAME, daemon=True)
    reader.start()
    while reader.is_alive():
        child.tell_model()  # a hot reload swapped it
        await asyncio.sleep(WATCH_INTERVAL_S)
    await child.close()
    sys.stdout.flush()
