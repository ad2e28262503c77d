"""Where the server's prediction log thread stalls under load, source tree against
source tree (issue 16 follow-up: main rows dropped with no shadow).

Each arm serves the same bundle from its own source tree (``name@/path/to/src``, put
first on the server's PYTHONPATH; ``git archive <commit> src | tar -x -C /tmp/x``)
and its own SQLite log, which grows over the rounds. Every round runs each arm once
(rotating their order) per ``--hogs`` setting: that many busy Python processes at the
server's nice value beside it, for a machine that is not quiet. Per run: answers/s and
p99 (``modelyard bench``), rows the log dropped (/metrics), and from a trace of the
server's log thread (a ``sitecustomize`` this script puts on the server's path) each
write's rows, wall and CPU time, its INSERTs' and its commit's wall time, whether the
commit checkpointed (the database file changed), each checkpoint the log ran on a
thread of its own; and where the log thread waited in the kernel (its /proc
``wchan`` every 2 ms, with the kernel stack of each wait of 30 ms or more: fsync or
not). Writes ``--out`` (JSON) and prints a table.

    .venv/bin/python benchmarks/serving/log_stalls.py BUNDLE \\
        --arms before@/tmp/before/src,after@src --rounds 4 --duration 30s --hogs 2,0
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from log_thread import LogThreadSampler

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TRACE_ENV = "LOG_STALLS_TRACE"
SERVE = ["poll_interval_s=0", "--port"]
SITECUSTOMIZE = f"""import os, sys
if os.environ.get({TRACE_ENV!r}):
    sys.path.insert(0, {str(HERE)!r})
    import log_stalls
    log_stalls.instrument(os.environ[{TRACE_ENV!r}])
"""


def instrument(path: str) -> None:
    """In the server: wrap the log's write, INSERTs, commit and checkpoint to append
    one JSON line per write (and per checkpoint) to ``path``."""
    import sqlalchemy as sa

    from modelyard.monitor import predlog

    out = open(path, "a", buffering=1)  # open for the server's life
    lock, local = threading.Lock(), threading.local()

    def emit(record: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps(record) + "\n")

    def sizes(engine: Any) -> tuple[int, int]:
        db = engine.url.database
        wal = os.stat(db + "-wal").st_size if os.path.exists(db + "-wal") else 0
        return wal, os.stat(db).st_mtime_ns if os.path.exists(db) else 0

    write_buffered, write_rows = predlog.PredictionLogger._write_buffered, predlog.write_rows

    def timed_write_rows(engine: Any, rows: list[Any]) -> None:
        local.sql = time.monotonic()
        write_rows(engine, rows)
        local.sql_end = time.monotonic()

    def timed_write(self: Any) -> bool:
        if not hasattr(self, "_stalls_hooked"):
            self._stalls_hooked = True

            @sa.event.listens_for(self.engine, "after_cursor_execute")
            def _after(*args: Any) -> None:
                if "INSERT" in str(args[2])[:20]:
                    local.inserted = time.monotonic()

        local.sql = local.sql_end = local.inserted = None
        rows, (_, mtime0) = self._buffered, sizes(self.engine)
        t0, c0 = time.monotonic(), time.thread_time()
        written = write_buffered(self)
        wall, cpu = time.monotonic() - t0, time.thread_time() - c0
        wal1, mtime1 = sizes(self.engine)
        record = {"t": time.time(), "rows": rows, "wall": wall, "cpu": cpu, "wal": wal1}
        record.update(checkpointed=mtime1 != mtime0, dropped=self.dropped, ok=written)
        if local.sql is not None and local.inserted is not None and local.sql_end is not None:
            record["inserts"] = local.inserted - local.sql
            record["commit"] = local.sql_end - local.inserted
        emit(record)
        return written

    predlog.PredictionLogger._write_buffered = timed_write
    predlog.write_rows = timed_write_rows
    if hasattr(predlog, "checkpoint"):
        checkpoint = predlog.checkpoint

        def timed_checkpoint(engine: Any) -> None:
            t0 = time.monotonic()
            checkpoint(engine)
            emit({"t": time.time(), "checkpoint": time.monotonic() - t0, "wal": sizes(engine)[0]})

        predlog.checkpoint = timed_checkpoint


class _Waits(LogThreadSampler):
    """Samples the log thread's ``wchan`` every 2 ms: samples per wchan, and each wait
    of 30 ms or more outside ``futex_do_wait`` (where it waits for work or the GIL)
    with the kernel stack read 20 ms into it."""

    def __init__(self, pid: int) -> None:
        super().__init__(pid, 0.002)
        self.counts: dict[str, int] = {}
        self.long: list[dict[str, Any]] = []
        self._current, self._since, self._stack = "", 0.0, ""

    def sample(self, wchan: str) -> None:
        wchan = wchan or "running"
        now = time.monotonic()
        self.counts[wchan] = self.counts.get(wchan, 0) + 1
        current, since = self._current, self._since
        if wchan != current:
            if current not in ("", "0", "running", "futex_do_wait") and now - since >= 0.03:
                self.long.append(
                    {"wchan": current, "ms": round(1e3 * (now - since)), "stack": self._stack}
                )
            self._current, self._since, self._stack = wchan, now, ""
        elif not self._stack and now - since > 0.02 and wchan not in ("0", "futex_do_wait"):
            assert self.task is not None  # sampled, so found
            try:
                self._stack = (self.task / "stack").read_text()
            except OSError:
                self._stack = "?"


def _metric(port: int, name: str) -> float:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{.*}})? (\S+)$", text, re.M))


def _run(bundle: Path, src: str, db: Path, hooks: Path, duration: str, hogs: int) -> dict[str, Any]:
    import httpx

    port = 18000 + os.getpid() % 1000
    trace = Path(tempfile.mktemp(suffix=".jsonl", dir=hooks))
    env = dict(os.environ, **{TRACE_ENV: str(trace)})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, str(hooks), env.get("PYTHONPATH")]))
    burn = [BIN / "python", "-c", "while True: pass"]
    hogging = [subprocess.Popen(burn) for _ in range(hogs)]
    load = ["--duration", duration, "--no-ceiling"]
    server = subprocess.Popen(
        [
            BIN / "modelyard",
            "serve",
            str(bundle),
            f"prediction_log_url=sqlite:///{db}",
            *SERVE,
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        dropped = _metric(port, "modelyard_prediction_log_dropped_total")
        with _Waits(server.pid) as waits:
            bench = subprocess.run(
                [BIN / "modelyard", "bench", f"http://127.0.0.1:{port}", "-c", "32", *load],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        dropped = _metric(port, "modelyard_prediction_log_dropped_total") - dropped
    finally:
        server.terminate()
        server.wait(60)
        for hog in hogging:
            hog.terminate()
            hog.wait()
    # the table row: concurrency, req/s, p50, p90, p95, p99 (ms), errors
    found = re.search(r"^\s*32\s+([\d,.]+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s", bench, re.M)
    assert found is not None, bench
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    trace.unlink()
    return {
        "answers_per_s": float(found.group(1).replace(",", "")),
        "p99_ms": float(found.group(2)),
        "dropped": dropped,
        **_stalls(records),
        "log_thread_waits": {"samples": waits.counts, "long": waits.long},
    }


def _stalls(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The longest write, commit and checkpoint (ms), the most rows one write took,
    and the longest time between two loaded writes (512 rows or more each)."""
    writes = [r for r in records if r.get("rows", 0) > 0]
    checkpoints = [r["checkpoint"] for r in records if "checkpoint" in r]
    gaps = [
        b["t"] - a["t"] for a, b in itertools.pairwise(writes) if min(a["rows"], b["rows"]) >= 512
    ]
    return {
        "writes": len(writes),
        "rows_written": sum(r["rows"] for r in writes),
        "most_rows_per_write": max((r["rows"] for r in writes), default=0),
        "longest_write_ms": 1e3 * max((r["wall"] for r in writes), default=0.0),
        "longest_commit_ms": 1e3 * max((r.get("commit", 0.0) for r in writes), default=0.0),
        "checkpointing_commits": sum(r["checkpointed"] for r in writes),
        "inserts_us_per_row_median": 1e6
        * statistics.median([r["inserts"] / r["rows"] for r in writes if "inserts" in r] or [0]),
        "cpu_us_per_row_median": 1e6
        * statistics.median([r["cpu"] / r["rows"] for r in writes] or [0]),
        "longest_gap_ms": 1e3 * max(gaps, default=0.0),
        "checkpoints_apart": len(checkpoints),
        "longest_checkpoint_apart_ms": 1e3 * max(checkpoints, default=0.0),
        "wal_max_mb": max((r["wal"] for r in records), default=0) / 1e6,
    }


def _fsync_ms(run: dict[str, Any]) -> list[int]:
    return [w["ms"] for w in run["log_thread_waits"]["long"] if "fsync" in w["stack"]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--arms", required=True, help="name@src,... (src: a source tree)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", default="30s")
    parser.add_argument("--hogs", default="2,0", help="Busy processes beside the server, per run.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "log-stalls.json")
    args = parser.parse_args()
    arms = dict(arm.split("@", 1) for arm in args.arms.split(","))
    work = Path(tempfile.mkdtemp(prefix="log-stalls-"))
    (work / "sitecustomize.py").write_text(SITECUSTOMIZE)
    flags = sorted(set(re.findall(r"avx\S*|amx\S*", Path("/proc/cpuinfo").read_text())))
    report: dict[str, Any] = {"cpus": os.cpu_count(), "cpu_flags": flags, "runs": []}
    report["started"], report["loadavg_start"] = (
        time.strftime("%F %T UTC", time.gmtime()),
        os.getloadavg(),
    )
    names = list(arms)
    for round_ in range(args.rounds):
        for hogs in (int(h) for h in args.hogs.split(",")):
            for k in range(len(names)):
                name = names[(k + round_) % len(names)]
                src = str(Path(arms[name]).resolve())
                run = _run(args.bundle, src, work / f"{name}.db", work, args.duration, hogs)
                run.update(arm=name, round=round_, hogs=hogs)
                report["runs"].append(run)
                print(
                    f"round {round_} hogs {hogs} {name}: {run['answers_per_s']:.0f}/s p99 "
                    f"{run['p99_ms']:.1f} ms, dropped {run['dropped']:.0f}, longest write "
                    f"{run['longest_write_ms']:.0f} ms (commit {run['longest_commit_ms']:.0f}), "
                    f"most rows a write {run['most_rows_per_write']}, checkpoint apart "
                    f"{run['longest_checkpoint_apart_ms']:.0f} ms, log-thread fsync waits >= 30 ms "
                    f"{_fsync_ms(run)}",
                    flush=True,
                )
    report["finished"], report["loadavg_end"] = (
        time.strftime("%F %T UTC", time.gmtime()),
        os.getloadavg(),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    for hogs in sorted({r["hogs"] for r in report["runs"]}):
        for name in names:
            runs = [r for r in report["runs"] if r["arm"] == name and r["hogs"] == hogs]
            fsyncs = [ms for r in runs for ms in _fsync_ms(r)]
            print(
                f"hogs {hogs} {name} ({len(runs)} runs): dropped {sum(r['dropped'] for r in runs):.0f}; "
                f"longest write median {statistics.median(r['longest_write_ms'] for r in runs):.0f} "
                f"max {max(r['longest_write_ms'] for r in runs):.0f} ms; longest commit max "
                f"{max(r['longest_commit_ms'] for r in runs):.0f} ms; most rows a write "
                f"{max(r['most_rows_per_write'] for r in runs)}; INSERTs us/row median "
                f"{statistics.median(r['inserts_us_per_row_median'] for r in runs):.0f}; log-thread "
                f"fsync waits >= 30 ms: {len(fsyncs)}, longest {max(fsyncs, default=0)} ms; "
                f"answers/s median {statistics.median(r['answers_per_s'] for r in runs):.0f}"
            )


if __name__ == "__main__":
    main()
