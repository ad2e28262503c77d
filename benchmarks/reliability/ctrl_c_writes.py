"""Ctrl-C landing inside an MLflow write on the embedded SQLite store: how often the
write that then ends the run ``KILLED`` fails, without and with
:func:`modelyard.tracking.ctrl_c_after_write` around the writes.

    .venv/bin/python benchmarks/reliability/ctrl_c_writes.py --interrupts 40 \\
        --json benchmarks/reliability/results/ctrl-c-writes-<date>.json

Each interrupt: a fresh process opens an MLflow run on a fresh SQLite file and logs a
metric in a loop (as the training callbacks do at each epoch's end, but without a
pause, so that a signal usually lands inside a write); SIGINT after a random 0.5-1.5 s;
the process then does what ``modelyard train`` does at Ctrl-C (a tag, ``end_run
KILLED``) and reports whether that worked and how long it took. The arms alternate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WRITER = """
import sys, time, contextlib
import mlflow
from mlflow.tracking import MlflowClient
from modelyard.tracking import ctrl_c_after_write
uri, held = sys.argv[1], sys.argv[2] == "held"
mlflow.set_tracking_uri(uri)
run = mlflow.start_run()
client = MlflowClient(uri)
print("ready", flush=True)
step = 0
try:
    while True:
        with ctrl_c_after_write() if held else contextlib.nullcontext():
            client.log_metric(run.info.run_id, "loss", float(step), step=step)
        step += 1
except KeyboardInterrupt:
    started = time.perf_counter()
    try:
        mlflow.set_tag("modelyard.status", "interrupted")
        mlflow.end_run("KILLED")
        print("ended", time.perf_counter() - started, flush=True)
    except Exception:
        print("failed", time.perf_counter() - started, flush=True)
"""


def interrupt_once(arm: str, folder: Path, rng: random.Random) -> dict[str, Any]:
    database = folder / f"{arm}-{time.monotonic_ns()}.db"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, f"sqlite:///{database}", arm],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise SystemExit(process.communicate()[1][-2000:])
    time.sleep(rng.uniform(0.5, 1.5))
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    outcome, seconds = [*out.split(), "none", "nan"][:2]
    return {
        "arm": arm,
        "outcome": outcome,
        "end_s": float(seconds),
        "stderr_lines": len(err.splitlines()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interrupts", type=int, default=40, help="per arm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    trials: list[dict[str, Any]] = []
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as folder:
        for n in range(args.interrupts):
            for arm in ("plain", "held") if n % 2 == 0 else ("held", "plain"):
                trial = interrupt_once(arm, Path(folder), rng)
                trials.append(trial)
                print(n, trial, flush=True)
    summary = {}
    for arm in ("plain", "held"):
        mine = [t for t in trials if t["arm"] == arm]
        failed = [t for t in mine if t["outcome"] != "ended"]
        summary[arm] = {
            "interrupts": len(mine),
            "end_failed": len(failed),
            "slowest_end_s": max(t["end_s"] for t in mine),
            "most_stderr_lines": max(t["stderr_lines"] for t in mine),
        }
    flags = sorted(
        {f for f in Path("/proc/cpuinfo").read_text().split() if f.startswith(("avx", "amx"))}
    )
    record = {
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cpu_flags": flags,
        "cpus": os.cpu_count(),
        "summary": summary,
        "trials": trials,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
