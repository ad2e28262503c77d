"""Main-path cost of shadow traffic (issue 16): the same model served without a
shadow, with ``shadow=staging`` at ``shadow_rate=1.0`` or ``0.2`` (by default in a
process of its own under ``SCHED_IDLE``), and without a shadow but beside a *burner*
(``burner.py``: the same model run through ONNX Runtime in a loop by an unrelated
process under ``SCHED_IDLE``, or at nice 19: what any second busy process on the other
core costs the main path), loaded at c=32 by ``modelyard bench`` (or ``wrk``).

    .venv/bin/python benchmarks/serving/shadow_overhead.py [--rounds 12] [--duration 5s]
        [--arms main,rate1,rate0.2,rate1-respec,rate1-nice,rate1-nice0,rate1-threads,burner,burner-nice,
                burner-share]
        [--loadgen bench|wrk] [--burner-share 0.15] [--task digits|mnist5k] [--home DIR]
        [--out FILE]

Every arm gets a server of its own, started and warmed once; then each round runs
every arm once, the order rotating from round to round, so the VM's drift (its speed
moves by tens of percent over minutes here) falls on all arms alike. Per arm, each
round's p99 (and throughput, and the server's CPU per answer) is divided by the
baseline's (the first arm) of the same round; the summary is the median of these
paired ratios with a percentile-bootstrap 95% interval over rounds (``paired.py``).
A burner is started before its arm's load and stopped after it, and reports how many
rows it ran per second. With ``--loadgen wrk``, ``wrk`` (C: little CPU of its own,
one thread) POSTs the v2 JSON body ``modelyard bench`` sends (``wrk_post.lua``).

An arm may name a source tree to serve from, ``rate1@/tmp/before/src`` (put first on
the server's PYTHONPATH; e.g. ``git archive <commit> src | tar -x -C /tmp/before``),
so a change is measured against the code before it in the same run.

Trains the digits model (``--task mnist5k``: the MNIST model of the serving benchmark,
28x28 inputs) in a temporary MODELYARD_HOME (or reuses ``--home`` when it
already holds one), registers an unchanged copy as version 2 (@staging; the shadow
costs what the main model costs) and, for ``rate1-respec``, another copy whose spec
differs (@respec, :func:`_register_respec`), and writes ``results/shadow-overhead.json`` (or
``--out``). Each
arm gets its own SQLite prediction log, so the rows each version logged are counted
beside the shadow's outcomes (done, dropped) and the rows the log dropped (of them
the shadow's). The server's CPU time per thread (event loop, prediction log, shadow
threads, the shadow's process, the rest) per 1,000 answers (the server's own count,
warm-up included, over the same window) is read from /proc: on a loaded machine it
moves less than latency does; so are each server thread kind's context switches per
answer (GIL hand-offs among them), and how long the server's log thread slept waiting
for SQLite's write lock (:class:`_LockWaits`: the shadow's process writes to the same
file). Prints the CPU flags and load averages.
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
from typing import Any

import wrk_load
from log_thread import LogThreadSampler
from paired import bootstrap_median, paired_ratios

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CLIENTS = 32


TASKS = {
    "digits": (["task=digits", "train=fast"], (8, 8, 1)),
    "mnist5k": (["task=mnist5k", "train.max_epochs=1", "train.min_epochs=1"], (28, 28, 1)),
}
"""What ``--task`` trains (its recipe as overrides, its pixels' shape): the 8x8 digits
model (the server's fixed cost per request dominates), or the default MNIST model of
the serving benchmark (28x28, ``cnn_fast``; one epoch: its cost, not its accuracy)."""


def _home_holds(home: Path) -> tuple[str, str]:
    """The task ``_setup`` trained in ``home`` and the name it registered (a home set
    up before ``--task`` existed holds the digits model)."""
    written = (home / ".shadow-bench-ready").read_text().split()
    return (written[0], written[1]) if len(written) == 2 else ("digits", "digits-cnn")


def _model_name(home: Path) -> str:
    """The registered name ``_setup`` served under in ``home``."""
    return _home_holds(home)[1]


def _setup(home: Path, task: str = "digits") -> str:
    """Train ``task`` and register an unchanged copy as @staging beside @production;
    the registered name."""
    from mlflow import MlflowClient

    from modelyard.config import compose_config
    from modelyard.train.run import train

    overrides, _ = TASKS[task]
    first = train(compose_config(overrides))
    copy = home / "copy" / "bundle"
    shutil.copytree(first.bundle_path, copy)
    name = first.model_name
    _register_copy(copy, task, name, "staging", first.experiment_id)
    MlflowClient().set_registered_model_alias(name, "production", first.model_version)
    return name


def _register_copy(
    bundle: Path, task: str, name: str, alias: str, experiment_id: str | None = None
) -> None:
    """Log the bundle folder ``bundle`` as a new MLflow model, register it as a new
    version of ``name`` and point ``alias`` at it."""
    import mlflow
    import numpy as np
    from mlflow import MlflowClient

    from modelyard import registry, tracking
    from modelyard.mlflow_model import log_bundle_model

    shape = TASKS[task][1]
    tracking.configure()
    with mlflow.start_run(experiment_id=experiment_id):
        uri = log_bundle_model(bundle, np.zeros((2, *shape), np.uint8), np.full((2, 10), 0.1))
    MlflowClient().set_registered_model_alias(name, alias, registry.register(uri, name))


RESPEC_ALIAS = "respec"
"""The alias of the copy :func:`_register_respec` makes: a shadow whose input spec
differs from the main model's."""


def _register_respec(home: Path) -> None:
    """Once per ``home``: register a copy of the served model whose ``bundle.json``
    scales pixels by a std 0.1% wider, as @respec. Its spec differs from the main
    model's, so the server decodes every shadowed request a second time with it (on
    its event loop: what ``rate1-respec`` measures); its answers differ by little."""
    marker = home / ".shadow-bench-respec"
    if marker.exists():
        return
    task, name = _home_holds(home)
    copy = home / "respec" / "bundle"
    shutil.rmtree(copy.parent, ignore_errors=True)
    shutil.copytree(home / "copy" / "bundle", copy)
    manifest_path = copy / "bundle.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["preprocessing"]["std"] *= 1.001
    manifest_path.write_text(json.dumps(manifest, indent=2))
    _register_copy(copy, task, name, RESPEC_ALIAS)
    marker.write_text(RESPEC_ALIAS)


def _source_env(src: str) -> dict[str, str]:
    """This process's environment, with ``src`` (if any) first on PYTHONPATH."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def _serve(port: int, model: str, *settings: str, src: str = "") -> subprocess.Popen[bytes]:
    env = _source_env(src)
    process = subprocess.Popen(
        [str(BIN / "modelyard"), "serve", f"{model}@production", "--port", str(port), *settings],
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
    """``modelyard bench`` at c=32 (1 s of warm-up first, its default)."""
    command = [str(BIN / "modelyard"), "bench", f"127.0.0.1:{port}", "-c", str(CLIENTS)]
    done = subprocess.run(
        [*command, "--duration", duration, "--no-ceiling", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    level = json.loads(done.stdout)["levels"][0]
    return {k: level[k] for k in ("requests", "throughput", "p50_ms", "p99_ms", "errors")}


def _served(port: int) -> float:
    """Requests the server has answered so far (all its ``modelyard_requests_total``)."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return sum(float(n) for n in re.findall(r"^modelyard_requests_total\{.*\} (\S+)$", text, re.M))


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


class _LockWaits(LogThreadSampler):
    """Samples where the server's prediction log thread is blocked (its /proc
    ``wchan``) every ``interval_s`` while running: in ``hrtimer_nanosleep`` it is in
    SQLite's busy handler, sleeping until the database's write lock frees (the log
    thread sleeps nowhere else while the server serves; between writes it waits on an
    event, in ``futex``). Gives the share of samples there and the longest run of
    them: how long one write waited for the shadow's process to finish its own."""

    def __init__(self, pid: int, interval_s: float = 0.005) -> None:
        super().__init__(pid, interval_s)
        self.samples = self.sleeping = self.run = self.longest = 0
        self.where: dict[str, int] = {}  # wchan -> samples: where else it waits

    def sample(self, wchan: str) -> None:
        asleep = wchan == "hrtimer_nanosleep"
        self.where[wchan or "running"] = self.where.get(wchan or "running", 0) + 1
        self.samples += 1
        self.sleeping += asleep
        self.run = self.run + 1 if asleep else 0
        self.longest = max(self.longest, self.run)

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


ARMS: dict[str, tuple[str, list[str], str]] = {
    # key: (label, serve settings, burner beside the server: "", "idle" or "nice")
    "main": ("main only", [], ""),
    "rate1": ("shadow_rate=1.0", ["shadow=staging", "shadow_rate=1.0"], ""),
    "rate0.2": ("shadow_rate=0.2", ["shadow=staging", "shadow_rate=0.2"], ""),
    "rate1-respec": (
        "shadow_rate=1.0, a shadow that reads inputs differently (decoded twice)",
        [f"shadow={RESPEC_ALIAS}", "shadow_rate=1.0"],
        "",
    ),
    "rate1-nice0": (
        "shadow_rate=1.0 shadow_idle=false shadow_nice=0",
        ["shadow=staging", "shadow_rate=1.0", "shadow_idle=false", "shadow_nice=0"],
        "",
    ),
    "rate1-nice": (
        "shadow_rate=1.0 shadow_idle=false",
        ["shadow=staging", "shadow_rate=1.0", "shadow_idle=false"],
        "",
    ),
    "rate1-threads": (
        "shadow_rate=1.0 shadow_process=false",
        ["shadow=staging", "shadow_rate=1.0", "shadow_process=false"],
        "",
    ),
    "burner": ("main only + burner (SCHED_IDLE)", [], "idle"),
    "burner-nice": ("main only + burner (nice 19)", [], "nice"),
    "burner-share": ("main only + burner (SCHED_IDLE, --burner-share)", [], "share"),
}


def _burner_command(bundle: Path, how: str, share: float) -> list[str]:
    """``burner.py`` as the shadow's process would run the model: its intra-op threads
    (``shadow_threads``) and the most rows one message to it carries; under
    ``SCHED_IDLE`` (``how``: idle, share) or at the shadow's nice value (nice), busy
    all the time or (share) for ``share`` of each period."""
    from modelyard.serve.settings import ServeSettings
    from modelyard.serve.shadow_process import MESSAGE_BATCHES

    defaults = ServeSettings(model="")
    rows = min(defaults.shadow_queue, MESSAGE_BATCHES * defaults.max_batch_size)
    command = [sys.executable, str(HERE / "burner.py"), str(bundle), "--rows", str(rows)]
    command += ["--threads", str(defaults.shadow_threads), "--nice", str(defaults.shadow_nice)]
    if how == "share":
        command += ["--share", str(share)]
    return command if how == "nice" else [*command, "--idle"]


class _Burner:
    """A burner running for the length of a ``with`` block: ready (warmed up) on
    entry, stopped on exit; :attr:`report` is what it says it ran."""

    def __init__(self, command: list[str], src: str = "") -> None:
        self.command = command
        self.env = _source_env(src)
        self.report: dict[str, Any] = {}
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> _Burner:
        if self.command:
            self._process = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, text=True, env=self.env
            )
            assert self._process.stdout is not None
            if self._process.stdout.readline().strip() != "ready":
                self._process.kill()
                raise RuntimeError(f"burner did not start: {' '.join(self.command)}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is None:
            return
        self._process.terminate()
        out, _ = self._process.communicate(timeout=30)
        self.report = json.loads(out.strip().splitlines()[-1])


class _Arm:
    """One arm: its settings, its own server (started once, on its own port and log)."""

    def __init__(self, key: str, src: str, port: int, home: Path, no_log: bool) -> None:
        label, extra, self.burner = ARMS[key]
        self.label = f"{label} [{src}]" if src else label
        self.src = src
        self.port = port
        self.model = _model_name(home)
        db = home / f"log-{port}.db"
        db.unlink(missing_ok=True)  # a reused --home: count this run's rows only
        self.log = "" if no_log else f"sqlite:///{db}"
        self.settings = ["poll_interval_s=0", *extra]
        self.settings.append(
            "log_predictions=false" if no_log else f"prediction_log_url={self.log}"
        )
        self.server: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.server = _serve(self.port, self.model, *self.settings, src=self.src)

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(30)


def _measure(arm: _Arm, load: Any, burner: list[str]) -> dict[str, object]:
    """One run of ``arm``'s load (``load(port)``) with its burner, if any, running
    throughout: the load tool's figures and what the server spent meanwhile."""
    assert arm.server is not None
    pid, port = arm.server.pid, arm.port
    with _Burner(burner, arm.src) as burning:
        outcomes, served = _shadow_counts(port), _served(port)
        before, switched = _thread_cpu(pid), _switches(pid)
        window = time.perf_counter()
        with _LockWaits(pid) as waits:
            result: dict[str, object] = dict(load(port))
        after, switched_after = _thread_cpu(pid), _switches(pid)
        window = time.perf_counter() - window
        answers = _served(port) - served
        outcomes_after = _shadow_counts(port)
    result["served"] = answers
    result["log_lock_waits"] = waits.found()
    result["switches_per_answer"] = _switches_per_answer(after, switched, switched_after, answers)
    result["load_1m"] = os.getloadavg()[0]
    result["shadow_outcomes"] = {k: v - outcomes.get(k, 0.0) for k, v in outcomes_after.items()}
    spent = _cpu_per_1000(before, after, answers)
    result["cpu_ms_per_1000_answers"] = spent
    result["server_cpu_ms_per_1000_answers"] = round(
        sum(ms for kind, ms in spent.items() if kind != "shadow process"), 1
    )
    # Cores the shadow's process kept busy over the window: what a burner's share matches
    shadow_s = sum(v for k, v in after.values() if k == "shadow process") - sum(
        v for k, v in before.values() if k == "shadow process"
    )
    result["shadow_process_cores"] = round(shadow_s / window, 3)
    if burning.report:
        cores = burning.report["cpu_s"] / burning.report["seconds"]
        result["burner"] = {**burning.report, "cores": round(cores, 3)}
    return result


def _paired(runs: dict[str, list[dict[str, object]]], base: str) -> dict[str, dict[str, Any]]:
    """Per arm, the median paired ratio to the baseline's run of the same round, with
    its bootstrap interval, for p99, p50, throughput and the server's CPU per answer."""
    keys = ("p99_ms", "p50_ms", "throughput", "server_cpu_ms_per_1000_answers")
    return {
        arm: {
            key: bootstrap_median(paired_ratios(_values(results, key), _values(runs[base], key)))
            for key in keys
        }
        for arm, results in runs.items()
        if arm != base
    }


def _values(results: list[dict[str, object]], key: str = "p99_ms") -> list[float]:
    """One arm's ``key`` in every round, in round order."""
    return [float(r[key]) for r in results]  # type: ignore[arg-type]


def _shadow_share(result: dict[str, object]) -> float:
    """The share of a run's answers the shadow computed."""
    done = result["shadow_outcomes"].get("done", 0.0)  # type: ignore[attr-defined]
    return float(done) / max(float(result["served"]), 1.0)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rounds", "--repeats", type=int, default=12, help="Rounds; each runs every arm once."
    )
    parser.add_argument("--duration", default="5s", help="Measured load per arm and round.")
    parser.add_argument(
        "--arms",
        default="main,rate1,burner",
        help=f"Comma-separated, the first is the baseline; of {', '.join(ARMS)}, each "
        "optionally @SRC (a source tree to serve from).",
    )
    parser.add_argument("--loadgen", choices=("bench", "wrk"), default="bench")
    parser.add_argument(
        "--burner-share",
        type=float,
        default=0.15,
        help="burner-share's CPU share of each 20 ms: about as busy as the shadow's process "
        "at shadow_rate=1.0 (its cores are printed; 2026-12-07: 0.06-0.1).",
    )
    parser.add_argument(
        "--task",
        choices=sorted(TASKS),
        default="digits",
        help="The model served (trained at the first use of --home, which keeps it).",
    )
    parser.add_argument("--settle", type=float, default=1.0, help="Seconds idle between runs.")
    parser.add_argument("--home", type=Path, help="A MODELYARD_HOME to set up once and reuse.")
    parser.add_argument(
        "--out", type=Path, default=HERE / "results" / "shadow-overhead.json", help="JSON written."
    )
    parser.add_argument(
        "--no-log", action="store_true", help="Both arms without the prediction log."
    )
    args = parser.parse_args()
    flags = sorted(set(re.findall(r"\bavx\S*", Path("/proc/cpuinfo").read_text())))
    home = args.home or Path(tempfile.mkdtemp(prefix="shadow-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["MODELYARD_HOME"] = str(home)
    ready = home / ".shadow-bench-ready"
    if not ready.exists():
        ready.write_text(f"{args.task} {_setup(home, args.task)}")
    elif _home_holds(home)[0] != args.task:
        held = _home_holds(home)[0]
        parser.error(f"--home {home} holds the {held} model; give another home for {args.task}")
    if "rate1-respec" in args.arms:
        _register_respec(home)
    arms: dict[str, _Arm] = {}
    for port, spec in enumerate(args.arms.split(","), start=18100):
        key, _, src = spec.partition("@")
        arm = _Arm(key, src, port, home, args.no_log)
        arms[arm.label] = arm
    base_arm = next(iter(arms))
    names = list(arms)
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in names}
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_at_start = Path("/proc/loadavg").read_text().strip()
    try:
        for arm in arms.values():
            arm.start()
        first = next(iter(arms.values()))
        if args.loadgen == "wrk":
            request = wrk_load.request_file(first.port, home)
            load = lambda port: wrk_load.run(port, args.duration, request, CLIENTS)  # noqa: E731
        else:
            load = lambda port: _bench(port, args.duration)  # noqa: E731
        for arm in arms.values():  # warm every server once, unmeasured
            _bench(arm.port, "2s")
        burners = {
            name: _burner_command(home / "copy" / "bundle", arm.burner, args.burner_share)
            if arm.burner
            else []
            for name, arm in arms.items()
        }
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for position, name in enumerate(names[shift:] + names[:shift]):
                result = _measure(arms[name], load, burners[name])
                result["round"], result["position"] = round_, position
                runs[name].append(result)
                print(round_, name, result, flush=True)
                time.sleep(args.settle)
    finally:
        for arm in arms.values():
            arm.stop()
    for arm in arms.values():
        if arm.log:
            runs[arm.label].append({"logged_rows_all_rounds": _logged_rows(arm.log)})
    logged = {name: runs[name].pop() for name, arm in arms.items() if arm.log}
    write(flags, args, runs, base_arm, logged, (started, load_at_start))
    if args.home is None:
        shutil.rmtree(home, ignore_errors=True)


def write(
    flags: list[str],
    args: argparse.Namespace,
    runs: dict[str, list[dict[str, object]]],
    base_arm: str,
    logged: dict[str, dict[str, object]],
    start: tuple[str, str],
) -> None:
    """Write the JSON (``--out``) and print its summary."""

    def median(arm: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in runs[arm])  # type: ignore[arg-type]

    summary = {
        arm: {key: median(arm, key) for key in ("throughput", "p50_ms", "p99_ms")} for arm in runs
    }
    rises = {
        arm: [ratio - 1 for ratio in paired_ratios(_values(results), _values(runs[base_arm]))]
        for arm, results in runs.items()
        if arm != base_arm
    }
    paired = _paired(runs, base_arm)
    out = {
        "cpu_flags": flags,
        "cpus": os.cpu_count(),
        "loadgen": args.loadgen,
        "task": args.task,
        "rounds": args.rounds,
        "duration": args.duration,
        "started": start[0],
        "loadavg_start": start[1],
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "loadavg_end": Path("/proc/loadavg").read_text().strip(),
        "runs": runs,
        "logged_rows": logged,
        "median": summary,
        "p99_rise": {
            arm: summary[arm]["p99_ms"] / summary[base_arm]["p99_ms"] - 1 for arm in rises
        },
        "p99_rise_per_pair": rises,
        "paired": paired,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    shown = ("cpu_flags", "loadavg_start", "loadavg_end", "median", "p99_rise", "p99_rise_per_pair")
    print(json.dumps({k: out[k] for k in shown}, indent=2))
    for arm, results in runs.items():
        for r in results:
            print(
                arm,
                f"shadow done {_shadow_share(r):.0%} of answers",
                r["shadow_outcomes"],
                r["cpu_ms_per_1000_answers"],
                r["switches_per_answer"],
                r["log_lock_waits"],
                r.get("burner", ""),
            )
    print(f"logged rows, all rounds: {logged}")
    print(
        f"\nmedian paired ratio to '{base_arm}' [bootstrap 95%], {args.rounds} rounds, {args.loadgen}:"
    )
    for arm, found in paired.items():
        cells = [
            f"{key} {v['median']:.3f} [{v['low']:.3f}, {v['high']:.3f}]" for key, v in found.items()
        ]
        burners: list[dict[str, float]] = [r["burner"] for r in runs[arm] if "burner" in r]  # type: ignore[misc]
        burned = [b["rows_per_s"] for b in burners]
        shadow = [_shadow_share(r) for r in runs[arm]]
        cores = [b["cores"] for b in burners]
        extra = (
            f"burner rows/s median {statistics.median(burned):.0f}, "
            f"cores {statistics.median(cores):.2f}"
            if burned
            else ""
        )
        if any(shadow):
            busy = statistics.median(float(r["shadow_process_cores"]) for r in runs[arm])  # type: ignore[arg-type]
            extra = f"shadow done/answers median {statistics.median(shadow):.2f}, cores {busy:.2f}"
        print(f"  {arm}: " + "; ".join(cells) + (f"; {extra}" if extra else ""))


if __name__ == "__main__":
    main()
