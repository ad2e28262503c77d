"""Time from starting `modelyard serve` (Popen) to /v2/health/ready answering 200.

    MODELYARD_HOME=... .venv/bin/python benchmarks/reliability/restart.py \
        <bundle folder> digits-cnn@candidate --repeat 3

Each start is ended with SIGKILL, as after a crash; the next start is the restart.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_to_ready(model: str) -> float:
    port = _free_port()
    exe = Path(sys.executable).with_name("modelyard")
    started = time.monotonic()
    process = subprocess.Popen(
        [str(exe), "serve", model, "--port", str(port), "poll_interval_s=0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.monotonic() - started < 60:
            try:
                url = f"http://127.0.0.1:{port}/v2/health/ready"
                if httpx.get(url, timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                time.sleep(0.02)
        raise SystemExit(f"{model}: not ready in 60 s")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="bundle folders or <name>@<alias>")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    report = {
        model: [round(time_to_ready(model), 2) for _ in range(args.repeat)] for model in args.models
    }
    print(json.dumps({"ready_s": report, "load_average_1m": os.getloadavg()[0]}, indent=2))


if __name__ == "__main__":
    main()
