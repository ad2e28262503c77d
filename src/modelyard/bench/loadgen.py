"""The closed-loop load engine: clients on asyncio (uvloop), optionally over processes.

``concurrency`` clients each loop request -> response on their own keep-alive
connection, the way perf_analyzer does; the first ``warmup_s`` is not measured.
When one core cannot saturate a server, ``processes`` spreads the clients over
worker processes that start together and whose measurements are merged.
"""

from __future__ import annotations

import asyncio
import importlib.util
import multiprocessing
import ssl
import time
from array import array
from dataclasses import dataclass
from typing import Any

from modelyard.bench.connection import Client, Endpoint, Tally, render_request
from modelyard.bench.protocol import Protocol
from modelyard.bench.stats import LevelResult, Partial, summarize
from modelyard.errors import UsageError


def infer_path(protocol: Protocol, model: str) -> str:
    """The path one inference request goes to, by protocol."""
    return f"/v2/models/{model}/infer" if protocol == "v2" else f"/v1/models/{model}:predict"


@dataclass(frozen=True)
class _Job:
    """Everything one process needs to run its share of the clients."""

    endpoint: Endpoint
    request: bytes
    clients: int
    warmup_s: float
    duration_s: float
    timeout_s: float


async def _drive(job: _Job) -> Partial:
    tally = Tally()
    context = ssl.create_default_context() if job.endpoint.tls else None
    clients = [Client(job.endpoint, job.request, tally, context) for _ in range(job.clients)]
    for client in clients:
        client.reconnect()
    await asyncio.sleep(job.warmup_s)
    tally.measuring = True
    started = time.perf_counter()
    end = started + job.duration_s
    while (now := time.perf_counter()) < end:
        # The watchdog: a request unanswered for timeout_s counts as failed and its
        # connection is replaced, so one stuck request cannot stall a client forever.
        for client in clients:
            connection = client.connection
            if connection and connection.waiting and now - connection.sent_at > job.timeout_s:
                connection.fail("timeout")
        await asyncio.sleep(min(0.25, end - now))
    tally.measuring, tally.stopped = False, True
    window = time.perf_counter() - started
    connecting = [c.task for c in clients if c.task is not None and not c.task.done()]
    for task in connecting:
        task.cancel()
    for client in clients:
        if client.connection is not None and client.connection.transport is not None:
            client.connection.transport.abort()
    # Requests still in flight are dropped, not counted; let the cancelled connects and
    # aborted transports finish before the loop closes.
    await asyncio.gather(*connecting, return_exceptions=True)
    await asyncio.sleep(0)
    return Partial(tally.latencies, dict(tally.errors), window)


def uses_uvloop() -> bool:
    """Whether the engine runs on uvloop (reported with the results)."""
    return importlib.util.find_spec("uvloop") is not None


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when installed (it roughly doubles the ceiling), else asyncio's."""
    if not uses_uvloop():
        return asyncio.new_event_loop()
    import uvloop

    return uvloop.new_event_loop()


def _run_job(job: _Job) -> Partial:
    loop = new_loop()
    try:
        return loop.run_until_complete(_drive(job))
    finally:
        loop.close()


def _worker(job: _Job, barrier: Any, results: Any) -> None:
    """A worker process: wait for the others, then run its clients and send back results."""
    barrier.wait()
    partial = _run_job(job)
    results.put((partial.latencies.tobytes(), partial.errors, partial.window_s))


def _run_processes(jobs: list[_Job]) -> list[Partial]:
    context = multiprocessing.get_context("spawn")  # fork is unsafe with threads around
    barrier = context.Barrier(len(jobs))
    results = context.Queue()
    workers = [context.Process(target=_worker, args=(j, barrier, results)) for j in jobs]
    for worker in workers:
        worker.start()
    timeout = jobs[0].warmup_s + jobs[0].duration_s + 60
    partials = []
    try:
        for _ in workers:
            raw, errors, window = results.get(timeout=timeout)
            latencies = array("d")
            latencies.frombytes(raw)
            partials.append(Partial(latencies, errors, window))
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
    return partials


def run_load(
    url: str,
    *,
    model: str,
    protocol: Protocol,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 1.0,
    payload: bytes,
    headers: dict[str, str],
    processes: int = 1,
    timeout_s: float = 30.0,
) -> LevelResult:
    """Hold ``concurrency`` requests in flight for ``warmup_s + duration_s``; measure the rest.

    Requests answered during the warm-up (connections opening, caches filling) are
    not counted. ``headers`` are the payload's and any auth headers; ``processes``
    spreads the clients over that many worker processes whose results are merged.
    """
    if concurrency < 1 or processes < 1 or duration_s <= 0 or warmup_s < 0:
        raise UsageError("concurrency and processes must be >= 1 and the duration > 0")
    endpoint = Endpoint.parse(url)
    request = render_request(endpoint, infer_path(protocol, model), payload, headers)
    processes = min(processes, concurrency)
    shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    jobs = [_Job(endpoint, request, n, warmup_s, duration_s, timeout_s) for n in shares]
    partials = [_run_job(jobs[0])] if processes == 1 else _run_processes(jobs)
    return summarize(concurrency, partials)
