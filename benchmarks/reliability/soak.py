"""Bounded soak of a real `modelyard serve` process on loopback.

Measures capacity (closed loop, a few seconds), then holds ~80% of it for the given
duration with paced requests, and reports errors, p99 latency of the first vs the
last window, and the server's resident memory growth. Stops by itself.

    MODELYARD_HOME=... .venv/bin/python benchmarks/reliability/soak.py \
        --model <bundle folder or name@alias> --minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

PAYLOAD = {"instances": [[[0] * 8] * 8]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _start(model: str, log_db: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    port = _free_port()
    exe = Path(sys.executable).with_name("modelyard")
    started = time.monotonic()
    process = subprocess.Popen(
        [str(exe), "serve", model, "--port", str(port), "poll_interval_s=0"],
        env={**os.environ, "MODELYARD_PREDICTION_LOG": f"sqlite:///{log_db}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() - started < 60:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return process, url, time.monotonic() - started
        except httpx.HTTPError:
            time.sleep(0.02)
    process.kill()
    raise SystemExit("server not ready in 60 s")


def _capacity(url: str, seconds: float, threads: int) -> float:
    done = [0] * threads
    stop = time.monotonic() + seconds

    def loop(index: int) -> None:
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < stop:
                if client.post(f"{url}/v1/models/digits-cnn:predict", json=PAYLOAD).is_success:
                    done[index] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / seconds


def _soak(url: str, rate: float, seconds: float, threads: int, pid: int) -> dict[str, object]:
    samples: list[tuple[float, float, int]] = []  # (sent at, latency, status)
    lock = threading.Lock()
    begin = time.monotonic()
    end = begin + seconds
    per_thread = rate / threads

    def loop(index: int) -> None:
        next_at = begin + index / rate
        with httpx.Client(timeout=10) as client:
            while next_at < end:
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sent = time.monotonic()
                try:
                    status = client.post(
                        f"{url}/v1/models/digits-cnn:predict", json=PAYLOAD
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    samples.append((sent - begin, time.monotonic() - sent, status))
                next_at += 1.0 / per_thread

    rss = [(0.0, _rss_mb(pid))]
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    while any(w.is_alive() for w in workers):
        time.sleep(1.0)
        rss.append((time.monotonic() - begin, _rss_mb(pid)))
    window = min(60.0, seconds / 3)
    times = np.array([s[0] for s in samples])
    latencies = np.array([s[1] for s in samples]) * 1000
    errors = sum(1 for s in samples if s[2] != 200)
    first = latencies[times < window]
    last = latencies[times >= seconds - window]
    # Memory after the first window (allocator warm) vs the end.
    warm = next(m for t, m in rss if t >= window)
    return {
        "requests": len(samples),
        "achieved_rps": round(len(samples) / seconds, 1),
        "errors": errors,
        "window_s": window,
        "p50_ms_first": round(float(np.percentile(first, 50)), 2),
        "p99_ms_first": round(float(np.percentile(first, 99)), 2),
        "p50_ms_last": round(float(np.percentile(last, 50)), 2),
        "p99_ms_last": round(float(np.percentile(last, 99)), 2),
        "rss_mb_start": round(rss[0][1], 1),
        "rss_mb_after_first_window": round(warm, 1),
        "rss_mb_end": round(rss[-1][1], 1),
        "rss_growth_pct_after_warmup": round(100 * (rss[-1][1] - warm) / warm, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="bundle folder or <name>@<alias>")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--load", type=float, default=0.8, help="share of measured capacity")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        process, url, ready_s = _start(args.model, Path(folder) / "log.db")
        try:
            capacity = _capacity(url, 8.0, args.threads)
            result = _soak(url, capacity * args.load, args.minutes * 60, args.threads, process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
    report = {
        "ready_s": round(ready_s, 2),
        "capacity_rps": round(capacity, 1),
        "target_rps": round(capacity * args.load, 1),
        "minutes": args.minutes,
        **result,
        "exit_code": code,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
