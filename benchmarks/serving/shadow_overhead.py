"""Main-path cost of shadow traffic (issue 16): the same model served without a
shadow and with ``shadow=staging`` at ``shadow_rate=1.0`` and ``0.2`` (by default in a
process of its own under ``SCHED_IDLE``), benched side by side with ``modelyard
bench`` at c=32, alternating A/B/C/A/B/C so machine load drifts evenly.

    .venv/bin/python benchmarks/serving/shadow_overhead.py [--repeats 3] [--duration 10s]
        [--arms main,rate1,rate0.2,rate1-nice,rate1-nice0,rate1-threads] [--home DIR]

An arm may name a source tree to serve from, ``rate1@/tmp/before/src`` (put first on
the server's PYTHONPATH; e.g. ``git archive <commit> src | tar -x -C /tmp/before``),
so a change is measured against the code before it in the same run.

Trains the digits model in a temporary MODELYARD_HOME (or reuses ``--home`` when it
already holds one), registers an unchanged copy as version 2 (@staging; the shadow
costs what the main model costs), and writes ``results/shadow-overhead.json``. Each
run gets its own SQLite prediction log, so the rows each version logged are counted
beside the shadow's outcomes (done, dropped) and the rows the log dropped (of them
the shadow's). The server's CPU time per thread (event loop, prediction log, shadow
threads, the shadow's process, the rest) per 1,000 answers is read from /proc: on a
loaded machine it moves less than latency does; so are each server thread kind's
context switches per answer (GIL hand-offs among them), and how long the server's
log thread slept waiting for SQLite's write lock (:class:`_LockWaits`: the shadow's
process writes to the same file). Prints the CPU flags and load averages.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _setup(home: Path) -> None:
    import mlflow
    import numpy as np
    from mlflow import MlflowClient

    from modelyard import registry, tracking
    from modelyard.config import compose_config
    from modelyard.mlflow_model import log_bundle_model
    from modelyard.train.run import train

    first = train(compose_config(["task=digits", "train=fast"]))
    copy = home / "copy" / "bundle"
    shutil.copytree(first.bundle_path, copy)
    tracking.configure()
    with mlflow.start_run(experiment_id=first.experiment_id):
        uri = log_bundle_model(copy, np.zeros((2, 8, 8, 1), np.uint8), np.full((2, 10), 0.1))
    second = registry.register(uri, "digits-cnn")
    client = MlflowClient()
    client.set_registered_model_alias("digits-cnn", "production", first.model_version)
    client.set_registered_model_alias("digits-cnn", "staging", second)


def _serve(port: int, *settings: str, src: str = "") -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [str(BIN / "modelyard"), "serve", "digits-cnn@production", "--port", str(port), *settings],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} not ready")


def _bench(port: int, duration: str) -> dict[str, float]:
    command = [str(BIN / "modelyard"), "bench", f"127.0.0.1:{port}", "-c", "32"]
    done = subprocess.run(
        [*command, "--duration", duration, "--no-ceiling", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    level = json.loads(done.stdout)["levels"][0]
    return {k: level[k] for k in ("requests", "throughput", "p50_ms", "p99_ms", "errors")}


def _shadow_counts(port: int) -> dict[str, float]:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    found = re.findall(r'modelyard_shadow_requests_total\{outcome="(\w+)"\} (\S+)', text)
    counts = {outcome: float(value) for outcome, value in found}
    # Rows the log dropped (buffer full), and of them the shadow's (dropped first)
    for name, key in (("dropped", "log_dropped"), ("shadow_dropped", "log_shadow_dropped")):
        value = re.search(rf"^modelyard_prediction_log_{name}_total (\S+)", text, re.M)
        if value is not None:
            counts[key] = float(value.group(1))
    return counts


def _shadow_children(pid: int) -> list[int]:
    """The shadow's process among ``pid``'s children (``shadow_process=true``), by name."""
    found = []
    for listed in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in listed.read_text().split():
            try:
                if Path(f"/proc/{child}/comm").read_text().startswith("modelyard-shad"):
                    found.append(int(child))
            except OSError:  # it ended
                continue
    return found


def _thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Each thread of ``pid`` (Linux /proc), and of the shadow's process when it has
    one: its kind and CPU seconds (user + system). Kinds: the event loop (the main
    thread), the prediction log and the shadow's threads (by the names they give
    themselves), the shadow's process (all its threads), and the rest (the main
    model's batcher, ONNX Runtime's pool, ...)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for child in _shadow_children(pid):
        for stat in Path(f"/proc/{child}/task").glob("*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[int(stat.parent.name)] = (
                "shadow process",
                (int(fields[11]) + int(fields[12])) / tick,
            )
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the thread ended
            continue
        tid = int(stat.parent.name)
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        if tid == pid:
            kind = "event loop"
        elif name.startswith("modelyard-log"):
            kind = "prediction log"
        elif name.startswith("modelyard-shad"):
            kind = "shadow threads"
        else:
            kind = "rest"
        found[tid] = (kind, seconds)
    return found


def _cpu_per_1000(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], answers: float
) -> dict[str, float]:
    """CPU milliseconds per 1,000 answers by kind of thread; a thread is of the kind it
    had at the end (the shadow's names itself at its first batch)."""
    spent: dict[str, float] = {}
    for tid, (kind, seconds) in after.items():
        spent[kind] = spent.get(kind, 0.0) + seconds - before.get(tid, (kind, 0.0))[1]
    return {kind: round(1e6 * value / max(answers, 1.0), 1) for kind, value in spent.items()}


def _switches(pid: int) -> dict[int, int]:
    """Each thread of ``pid``: its context switches so far, voluntary (it waited: for
    the GIL, a lock, I/O) and not (preempted)."""
    found = {}
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:  # the thread ended
            continue
        counts = re.findall(r"ctxt_switches:\s+(\d+)", text)
        found[int(status.parent.name)] = sum(int(count) for count in counts)
    return found


def _switches_per_answer(
    kinds: dict[int, tuple[str, float]],
    before: dict[int, int],
    after: dict[int, int],
    answers: float,
) -> dict[str, float]:
    """Context switches per answer by kind of thread of the server (not its shadow's
    process): each GIL hand-off between two threads is at least one."""
    made: dict[str, int] = {}
    for tid, count in after.items():
        kind = kinds.get(tid, ("rest", 0.0))[0]
        made[kind] = made.get(kind, 0) + count - before.get(tid, 0)
    return {kind: round(value / max(answers, 1.0), 3) for kind, value in made.items()}


class _LockWaits:
    """Samples where the server's prediction log thread is blocked (its /proc
    ``wchan``) every ``interval_s`` while running: in ``hrtimer_nanosleep`` it is in
    SQLite's busy handler, sleeping until the database's write lock frees (the log
    thread sleeps nowhere else while the server serves; between writes it waits on an
    event, in ``futex``). Gives the share of samples there and the longest run of
    them: how long one write waited for the shadow's process to finish its own."""

    def __init__(self, pid: int, interval_s: float = 0.005) -> None:
        import threading

        self.interval_s = interval_s
        self.path: Path | None = None
        for comm in Path(f"/proc/{pid}/task").glob("*/comm"):
            if comm.read_text().startswith("modelyard-log"):
                self.path = comm.parent / "wchan"
        self.samples = self.sleeping = self.run = self.longest = 0
        self.where: dict[str, int] = {}  # wchan -> samples: where else it waits
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while self.path is not None and not self._stop.wait(self.interval_s):
            try:
                wchan = self.path.read_text()
            except OSError:  # the thread ended
                return
            asleep = wchan == "hrtimer_nanosleep"
            self.where[wchan or "running"] = self.where.get(wchan or "running", 0) + 1
            self.samples += 1
            self.sleeping += asleep
            self.run = self.run + 1 if asleep else 0
            self.longest = max(self.longest, self.run)

    def __enter__(self) -> _LockWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def found(self) -> dict[str, object]:
        top = sorted(self.where.items(), key=lambda item: -item[1])[:4]
        return {
            "share": round(self.sleeping / max(self.samples, 1), 4),
            "longest_ms": round(1e3 * self.longest * self.interval_s, 1),
            "where": {name: round(n / max(self.samples, 1), 3) for name, n in top},
        }


def _logged_rows(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            counted = connection.execute(
                sa.text("SELECT version, COUNT(*) FROM predictions GROUP BY version")
            ).all()
    finally:
        engine.dispose()
    return {str(version): int(count) for version, count in counted}


ARMS = {
    "main": ("main only", []),
    "rate1": ("shadow_rate=1.0", ["shadow=staging", "shadow_rate=1.0"]),
    "rate0.2": ("shadow_rate=0.2", ["shadow=staging", "shadow_rate=0.2"]),
    "rate1-nice0": (
        "shadow_rate=1.0 shadow_idle=false shadow_nice=0",
        ["shadow=staging", "shadow_rate=1.0", "shadow_idle=false", "shadow_nice=0"],
    ),
    "rate1-nice": (
        "shadow_rate=1.0 shadow_idle=false",
        ["shadow=staging", "shadow_rate=1.0", "shadow_idle=false"],
    ),
    "rate1-threads": (
        "shadow_rate=1.0 shadow_process=false",
        ["shadow=staging", "shadow_rate=1.0", "shadow_process=false"],
    ),
}


def _run_once(
    port: int, settings: list[str], duration: str, log: str, src: str = ""
) -> dict[str, object]:
    server = _serve(port, *settings, src=src)
    try:
        before, switched = _thread_cpu(server.pid), _switches(server.pid)
        with _LockWaits(server.pid) as waits:
            result: dict[str, object] = dict(_bench(port, duration))
        after = _thread_cpu(server.pid)
        result["log_lock_waits"] = waits.found()
        result["switches_per_answer"] = _switches_per_answer(
            after, switched, _switches(server.pid), float(result["requests"])
        )
        result["load_1m"] = os.getloadavg()[0]
        result["shadow_outcomes"] = _shadow_counts(port)
    finally:
        server.terminate()
        server.wait(30)
    answers = float(result["requests"])  # type: ignore[arg-type]
    result["cpu_ms_per_1000_answers"] = _cpu_per_1000(before, after, answers)
    result["logged_rows"] = {} if log == "" else _logged_rows(log)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", default="10s")
    parser.add_argument(
        "--arms",
        default="main,rate1,rate0.2",
        help=f"Comma-separated, the first is the baseline; of {', '.join(ARMS)}, each "
        "optionally @SRC (a source tree to serve from).",
    )
    parser.add_argument("--home", type=Path, help="A MODELYARD_HOME to set up once and reuse.")
    parser.add_argument(
        "--no-log", action="store_true", help="Both arms without the prediction log."
    )
    args = parser.parse_args()
    flags = sorted(set(re.findall(r"\bavx\S*", Path("/proc/cpuinfo").read_text())))
    home = args.home or Path(tempfile.mkdtemp(prefix="shadow-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["MODELYARD_HOME"] = str(home)
    if not (home / ".shadow-bench-ready").exists():
        _setup(home)
        (home / ".shadow-bench-ready").touch()
    arms: dict[str, tuple[list[str], str]] = {}
    for spec in args.arms.split(","):
        key, _, src = spec.partition("@")
        label, extra = ARMS[key]
        arms[f"{label} [{src}]" if src else label] = (extra, src)
    base_arm = next(iter(arms))
    runs: dict[str, list[dict[str, object]]] = {arm: [] for arm in arms}
    for repeat in range(args.repeats):
        for port, (arm, (extra, src)) in enumerate(arms.items(), start=18100):
            db = home / f"log-{repeat}-{port}.db"
            db.unlink(missing_ok=True)  # a reused --home: count this run's rows only
            log = "" if args.no_log else f"sqlite:///{db}"
            settings = ["poll_interval_s=0", *extra]
            settings.append("log_predictions=false" if args.no_log else f"prediction_log_url={log}")
            result = _run_once(port, settings, args.duration, log, src)
            runs[arm].append(result)
            print(repeat, arm, result, flush=True)

    def median(arm: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in runs[arm])  # type: ignore[arg-type]

    summary = {
        arm: {key: median(arm, key) for key in ("throughput", "p50_ms", "p99_ms")} for arm in arms
    }
    rises = {
        arm: [
            float(r["p99_ms"]) / float(b["p99_ms"]) - 1  # type: ignore[arg-type]
            for r, b in zip(results, runs[base_arm], strict=True)
        ]
        for arm, results in runs.items()
        if arm != base_arm
    }
    out = {
        "cpu_flags": flags,
        "cpus": os.cpu_count(),
        "runs": runs,
        "median": summary,
        "p99_rise": {
            arm: summary[arm]["p99_ms"] / summary[base_arm]["p99_ms"] - 1 for arm in rises
        },
        "p99_rise_per_pair": rises,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "shadow-overhead.json").write_text(json.dumps(out, indent=2))
    shown = ("cpu_flags", "median", "p99_rise", "p99_rise_per_pair")
    print(json.dumps({k: out[k] for k in shown}, indent=2))
    for arm, results in runs.items():
        for r in results:
            done = r["shadow_outcomes"].get("done", 0.0)  # type: ignore[attr-defined]
            share = done / max(float(r["requests"]), 1.0)  # type: ignore[arg-type]
            print(
                arm,
                f"shadow done {share:.0%} of answers",
                r["shadow_outcomes"],
                r["logged_rows"],
                r["cpu_ms_per_1000_answers"],
                r["switches_per_answer"],
                r["log_lock_waits"],
            )
    if args.home is None:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
