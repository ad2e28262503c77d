"""What a second writer on the same SQLite prediction log costs the first (issue 16).

With ``shadow_process=true`` the server's log thread and the shadow's process both
write rows to one SQLite file (WAL). This times the server's side alone: a
"server" process writes rows through :class:`PredictionLogger` at a fixed rate (batches
of ``--batch`` rows, a write every ``--write-rows`` as the server's
``log_write_rows``), with and without a "shadow" process that writes the same rows
under ``SCHED_IDLE`` (role ``shadow``) to the same file, and reads the CPU time of the
server's log thread from /proc per 1,000 rows. No HTTP, no model: only the log's
share of what the shadow costs the server, with far less noise than a served p99.

    .venv/bin/python benchmarks/serving/log_writers.py [--rounds 5] [--seconds 6]
        [--rate 6000] [--arms alone,shared,...]

Arms: ``alone`` (no shadow writer), ``shared`` (a shadow writer on the same file),
``apart`` (the shadow writes to another file: what the sharing itself costs),
``busy`` (a shadow that computes under ``SCHED_IDLE`` and writes nothing: what
sharing the cores costs),
and arms that set SQLite pragmas on one side (``server:`` / ``shadow:`` followed by
``wal_autocheckpoint=N`` etc., joined with ``+``), e.g.
``shared+shadow:wal_autocheckpoint=0``; ``shadow:lifted`` runs the shadow's writes
as the shadow's process does, on a thread kept at the server's priority
(:class:`WriteLane`; until 2026-12-07, a per-write lift out of ``SCHED_IDLE``). Arms alternate within each round; the
medians and the spread per arm are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _thread_cpu(thread: Any) -> float:
    """CPU seconds (user + system) of ``thread`` so far, to the nanosecond (/proc's
    figures move in 10 ms ticks: too coarse for a few seconds of a light thread)."""
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def _writer(
    url: str,
    role: str,
    pragmas: list[str],
    rate: float,
    seconds: float,
    batch: int,
    write_rows: int,
    idle: bool,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """Write ``rate`` rows a second for ``seconds`` as the server's log would; put
    (log thread CPU s, rows written, write calls, wall seconds in writes) on ``out``."""
    import sqlalchemy as sa

    from modelyard.monitor import logstore, predlog
    from modelyard.monitor.predlog import PredictionLogger
    from modelyard.serve.shadow_child import WriteLane

    # made before going idle, as the shadow's process does: its transactions not idle
    lane = WriteLane() if "lifted" in pragmas else None
    pragmas = [p for p in pragmas if p != "lifted"]
    if idle:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    log = PredictionLogger(url, flush_interval_s=1.0, capacity=100_000, write_through=lane)

    @sa.event.listens_for(log.engine, "connect")
    def _extra(connection: Any, record: Any) -> None:
        cursor = connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    timed = {"calls": 0, "seconds": 0.0, "longest": 0.0}
    write = logstore.write_rows

    def timed_write(engine: Any, rows: list[Any]) -> None:
        started = time.perf_counter()
        write(engine, rows)
        took = time.perf_counter() - started
        timed["calls"] += 1
        timed["seconds"] += took
        timed["longest"] = max(timed["longest"], took)

    predlog.write_rows = timed_write  # type: ignore[attr-defined]  # timed where predlog calls it
    log.start()
    rng = np.random.default_rng(0 if role == "main" else 1)
    summaries = {
        name: rng.random(batch).astype(np.float32)
        for name in ("mean_intensity", "std_intensity", "ink_fraction")
    }
    projection = rng.normal(size=(batch, 4))
    labels = [str(i % 10) for i in range(batch)]
    confidences = rng.random(batch)
    ready.set()
    go.wait()
    cpu0, written0 = _thread_cpu(log._thread), log.written
    started = time.monotonic()
    sent = 0
    serial = 0
    while (now := time.monotonic() - started) < seconds:
        due = int(now * rate)
        while sent + batch <= due:
            ids = [f"{serial + i:032x}" for i in range(batch)]
            serial += batch
            log.record(
                "digits-cnn",
                "1" if role == "main" else "2",
                ids,
                summaries,
                projection,
                labels,
                confidences,
                0.005,
                role=role,
            )
            before = sent % write_rows
            sent += batch
            if before + batch >= write_rows:
                log.wake()
        time.sleep(0.002)
    log.flush(30)
    cpu = _thread_cpu(log._thread) - cpu0
    written = log.written - written0
    out.put((role, cpu, written, timed["calls"], timed["seconds"], timed["longest"]))
    log.close()


def _burn(seconds: float, ready: Any, go: Any, out: Any, idle: bool = True) -> None:
    """The shadow's computing without its writing: matrix products over ~3 MB (about
    a small CNN's working set) under ``SCHED_IDLE``, for ``seconds``; with ``idle``
    false, at normal priority (the main path's load, ``--saturate``)."""
    if idle:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    rng = np.random.default_rng(2)
    a, b = rng.random((512, 512), np.float32), rng.random((512, 512), np.float32)
    ready.set()
    go.wait()
    started = time.monotonic()
    products = 0
    while time.monotonic() - started < seconds:
        a = (a @ b) / 512.0
        products += 1
    out.put(("busy" if idle else "load", float(products), 0, 0, 0.0, 0.0))


def _arm(spec: str) -> tuple[str, list[str], list[str]]:
    """An arm's shadow mode (alone, shared, apart) and each side's extra pragmas."""
    mode, *extras = spec.split("+")
    if mode not in ("alone", "shared", "apart", "busy"):
        raise SystemExit(f"unknown arm '{spec}': start it with alone, shared, apart or busy")
    server: list[str] = []
    shadow: list[str] = []
    for extra in extras:
        side, _, pragma = extra.partition(":")
        if side not in ("server", "shadow") or ("=" not in pragma and pragma != "lifted"):
            raise SystemExit(
                f"'{extra}' in arm '{spec}': write server:PRAGMA=N, shadow:PRAGMA=N "
                "or shadow:lifted"
            )
        (server if side == "server" else shadow).append(pragma)
    return mode, server, shadow


def _run(spec: str, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    mode, server_pragmas, shadow_pragmas = _arm(spec)
    for old in folder.glob("log*.db*"):
        old.unlink()
    context = mp.get_context("spawn")
    out = context.Queue()
    go = context.Event()
    common = (args.rate, args.seconds, args.batch, args.write_rows)
    readies = []
    processes = []
    sides = [("main", f"sqlite:///{folder}/log.db", server_pragmas, False)]
    if mode != "alone":
        db = "log.db" if mode == "shared" else "log-shadow.db"
        sides.append(("shadow", f"sqlite:///{folder}/{db}", shadow_pragmas, True))
    for role, url, pragmas, idle in sides:
        ready = context.Event()
        if mode == "busy" and role == "shadow":
            process = context.Process(target=_burn, args=(args.seconds, ready, go, out))
        else:
            process = context.Process(
                target=_writer, args=(url, role, pragmas, *common, idle, ready, go, out)
            )
        process.start()
        readies.append(ready)
        processes.append(process)
    for ready in readies:
        ready.wait(60)
    for _ in range(args.saturate):
        ready = context.Event()
        process = context.Process(target=_burn, args=(args.seconds, ready, go, out, False))
        process.start()
        ready.wait(60)
        processes.append(process)
    go.set()
    results = {}
    for _ in processes:
        role, *found = out.get(timeout=args.seconds + 120)
        results[role] = found
    for process in processes:
        process.join(30)
    cpu, rows, calls, seconds, longest = results["main"]
    found = {
        "server_log_cpu_ms_per_1000_rows": round(1e6 * cpu / max(rows, 1), 2),
        "server_write_wall_ms_per_1000_rows": round(1e6 * seconds / max(rows, 1), 2),
        "server_longest_write_ms": round(1e3 * longest, 1),
        "server_writes": calls,
        "server_rows": rows,
    }
    if "shadow" in results:
        cpu, rows, calls, seconds, longest = results["shadow"]
        found["shadow_log_cpu_ms_per_1000_rows"] = round(1e6 * cpu / max(rows, 1), 2)
        found["shadow_rows"] = rows
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rate", type=float, default=6000.0, help="rows a second, each side")
    parser.add_argument("--batch", type=int, default=32, help="rows a record() call")
    parser.add_argument("--write-rows", type=int, default=512, help="as log_write_rows")
    parser.add_argument("--arms", default="alone,shared,apart")
    parser.add_argument(
        "--saturate",
        type=int,
        default=0,
        help="processes computing at normal priority beside every arm (the main path at "
        "saturation: a SCHED_IDLE shadow then gets the CPU only in gaps)",
    )
    parser.add_argument("--out", type=Path, help="write every round's figures here (JSON)")
    args = parser.parse_args()
    arms = args.arms.split(",")
    for spec in arms:
        _arm(spec)
    runs: dict[str, list[dict[str, float]]] = {spec: [] for spec in arms}
    with tempfile.TemporaryDirectory(prefix="log-writers-") as folder:
        for round_ in range(args.rounds):
            order = arms[round_ % len(arms) :] + arms[: round_ % len(arms)]
            for spec in order:
                found = _run(spec, Path(folder), args)
                found["load_1m"] = round(os.getloadavg()[0], 2)
                runs[spec].append(found)
                print(round_, spec, found, flush=True)
    summary: dict[str, dict[str, object]] = {}
    for spec, rounds in runs.items():
        cpu = [f["server_log_cpu_ms_per_1000_rows"] for f in rounds]
        wall = [f["server_write_wall_ms_per_1000_rows"] for f in rounds]
        summary[spec] = {
            "server_log_cpu_ms_per_1000_rows": statistics.median(cpu),
            "range": [min(cpu), max(cpu)],
            "server_write_wall_ms_per_1000_rows": statistics.median(wall),
            "server_longest_write_ms": max(f["server_longest_write_ms"] for f in rounds),
            "server_writes": statistics.median(f["server_writes"] for f in rounds),
        }
    print(json.dumps(summary, indent=2))
    if args.out is not None:
        args.out.write_text(
            json.dumps(
                {"args": vars(args) | {"out": str(args.out)}, "runs": runs, "median": summary},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
