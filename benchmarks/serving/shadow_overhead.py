"""Main-path cost of shadow traffic (issue 16): the same model served without a
shadow and with ``shadow=staging shadow_rate=1.0`` (its model thread at the default
``shadow_nice=10``, and at ``shadow_nice=0``), benched side by side with
``modelyard bench`` at c=32, alternating A/B/C/A/B/C so machine load drifts evenly.

    .venv/bin/python benchmarks/serving/shadow_overhead.py [--repeats 3] [--duration 10s]

Trains the digits model in a temporary MODELYARD_HOME, registers an unchanged copy
as version 2 (@staging; the shadow costs what the main model costs), and writes
``results/shadow-overhead.json``. Prints the CPU flags and load averages.
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


def _serve(port: int, *settings: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [str(BIN / "modelyard"), "serve", "digits-cnn@production", "--port", str(port), *settings],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
    return {k: level[k] for k in ("throughput", "p50_ms", "p99_ms", "errors")}


def _shadow_counts(port: int) -> dict[str, float]:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    found = re.findall(r'modelyard_shadow_requests_total\{outcome="(\w+)"\} (\S+)', text)
    return {outcome: float(value) for outcome, value in found}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", default="10s")
    parser.add_argument(
        "--no-log", action="store_true", help="Both arms without the prediction log."
    )
    args = parser.parse_args()
    flags = sorted(set(re.findall(r"\bavx\S*", Path("/proc/cpuinfo").read_text())))
    home = Path(tempfile.mkdtemp(prefix="shadow-bench-"))
    os.environ["MODELYARD_HOME"] = str(home)
    _setup(home)
    common = ["poll_interval_s=0", f"prediction_log_url=sqlite:///{home / 'log.db'}"]
    if args.no_log:
        common.append("log_predictions=false")
    shadowed = [*common, "shadow=staging", "shadow_rate=1.0"]
    arms = {
        "main only": common,
        "shadow_rate=1.0": shadowed,  # shadow_nice=10, the default
        "shadow_rate=1.0 shadow_nice=0": [*shadowed, "shadow_nice=0"],
    }
    runs: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    shadow: dict[str, float] = {}
    for repeat in range(args.repeats):
        for port, (arm, settings) in enumerate(arms.items(), start=18100):
            server = _serve(port, *settings)
            try:
                result = _bench(port, args.duration)
                result["load_1m"] = os.getloadavg()[0]
                runs[arm].append(result)
                if "shadow" in arm:
                    shadow = _shadow_counts(port)
            finally:
                server.terminate()
                server.wait(30)
            print(repeat, arm, result, flush=True)
    summary = {
        arm: {
            key: statistics.median(r[key] for r in results)
            for key in ("throughput", "p50_ms", "p99_ms")
        }
        for arm, results in runs.items()
    }
    base = runs["main only"]
    rises = {
        arm: [r["p99_ms"] / b["p99_ms"] - 1 for r, b in zip(results, base, strict=True)]
        for arm, results in runs.items()
        if arm != "main only"
    }
    out = {
        "cpu_flags": flags,
        "cpus": os.cpu_count(),
        "runs": runs,
        "median": summary,
        "p99_rise": {
            arm: summary[arm]["p99_ms"] / summary["main only"]["p99_ms"] - 1 for arm in rises
        },
        "p99_rise_per_pair": rises,
        "shadow_outcomes_last_run": shadow,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "shadow-overhead.json").write_text(json.dumps(out, indent=2))
    shown = ("cpu_flags", "median", "p99_rise", "p99_rise_per_pair")
    print(json.dumps({k: out[k] for k in shown}, indent=2))
    print("shadow outcomes (last run):", shadow)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
