"""Time from starting `modelyard serve` to /v2/health/ready, and the server's memory.

    .venv/bin/python benchmarks/deploy/ready.py --repeat 5 [--busy] \
        --case folder /path/to/bundle \
        --case embedded mnist5k-cnn@candidate MODELYARD_HOME=/path/home \
        --case server mnist5k-cnn@candidate MLFLOW_TRACKING_URI=http://127.0.0.1:5000 \
        --case before-embedded mnist5k-cnn@candidate MODELYARD_HOME=... PYTHONPATH=/old/src

A case is a name, the model to serve, and environment variables for its server
(``MODELYARD=<path>`` picks another modelyard executable, e.g. a [serve]-only venv's).
Cases are started in turn, ``--repeat`` rounds, so drift in the machine's speed hits
every case alike. Ready time runs from just before ``Popen`` to the first 200 from the
readiness route, polled every 10 ms. RSS is read from /proc after ready and again
after 200 predictions. ``--busy`` keeps one core busy with a spinning process for the
whole run (another job on one core). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_flags() -> str:
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = line
            break
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    model = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return f"{model}; " + " ".join(f for f in wanted if f" {f}" in flags)


def start_once(
    exe: str, model: str, env: dict[str, str], predict: dict[str, Any]
) -> dict[str, float]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    process = subprocess.Popen(
        [exe, "serve", model, "--port", str(port), "poll_interval_s=0", "log_predictions=false"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        with httpx.Client(timeout=5) as client:
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"{model}: the server exited with {process.returncode}")
                if time.monotonic() - started > 60:
                    raise SystemExit(f"{model}: not ready in 60 s")
                try:
                    if client.get(f"{base}/v2/health/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
            ready = time.monotonic() - started
            rss_ready = _rss_mb(process.pid)
            for _ in range(200):
                client.post(f"{base}/v1/models/{predict['name']}:predict", json=predict["body"])
            rss_after = _rss_mb(process.pid)
            return {"ready_s": ready, "rss_ready_mb": rss_ready, "rss_after_mb": rss_after}
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--case", nargs="+", action="append", required=True,
        metavar="NAME MODEL [KEY=VALUE ...]", help="a server to start: name, model, env",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--busy", action="store_true", help="keep one core busy meanwhile")
    parser.add_argument("--model-name", default="mnist5k-cnn", help="served model's name")
    parser.add_argument("--pixels", type=int, default=28, help="square image side to send")
    args = parser.parse_args()
    default_exe = str(Path(sys.executable).with_name("modelyard"))
    cases: dict[str, tuple[str, str, dict[str, str]]] = {}
    given: dict[str, dict[str, str]] = {}
    for name, model, *settings in args.case:
        given[name] = dict(item.split("=", 1) for item in settings)
        env = {**os.environ, **given[name]}
        cases[name] = (env.pop("MODELYARD", default_exe), model, env)
    body = {"instances": [[[0] * args.pixels] * args.pixels]}
    predict = {"name": args.model_name, "body": body}
    spinner = None
    if args.busy:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    try:
        for _ in range(args.repeat):
            for name, (exe, model, env) in cases.items():
                runs[name].append(start_once(exe, model, env, predict))
    finally:
        if spinner is not None:
            spinner.kill()
    summary = {
        name: {
            key: {
                "median": round(statistics.median(r[key] for r in results), 3),
                "min": round(min(r[key] for r in results), 3),
                "max": round(max(r[key] for r in results), 3),
            }
            for key in ("ready_s", "rss_ready_mb", "rss_after_mb")
        }
        for name, results in runs.items()
    }
    described = {
        name: {"model": model, "modelyard": exe, "settings": given[name]}
        for name, (exe, model, env) in cases.items()
    }
    print(json.dumps({
        "cpu": _cpu_flags(), "cores": os.cpu_count(), "busy_core": args.busy,
        "load_average_1m": os.getloadavg()[0], "cases": described,
        "summary": summary, "runs": runs,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
