"""Serve one bundle with ``modelyard serve`` and load it with ``modelyard bench``.

One server at a time, each started fresh with the same settings, so a row's
images/s is what a user gets from ``modelyard serve <bundle>`` on this machine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MODELYARD = str(Path(sys.executable).parent / "modelyard")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, server: subprocess.Popen[bytes], timeout_s: float = 90.0) -> float:
    """Seconds until ``/v2/health/ready`` answers 200; raise if the server died or hung."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if server.poll() is not None:
            raise SystemExit(f"modelyard serve exited with {server.returncode} before ready")
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout_s:.0f}s")


def tree_cpu_s(root: int) -> float:
    """utime + stime of ``root`` and its descendants (live ones), in seconds."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, seconds in times.items():
        up = pid
        while up not in (0, 1, root) and up in parents:
            up = parents[up]
        if up == root:
            total += seconds
    return total


def serve_and_bench(
    model: str,
    env: dict[str, str],
    duration: str,
    concurrency: int,
    settings: list[str],
    *,
    settle_s: float = 0.0,
    bench_args: Sequence[str] = (),
    probe: Callable[[str], dict[str, Any]] | None = None,
    server_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Start ``modelyard serve model``, bench it at ``concurrency``, stop it; the level's
    row, with the server's CPU (utime + stime of its process tree) per answered request.
    ``settle_s``: seconds to wait after ready (start-up work); ``bench_args``: extra
    ``modelyard bench`` options (``--warmup 0s``); ``probe``: called with the server's
    URL after the bench, before the server stops; what it returns joins the row;
    ``server_env``: added to ``env`` for the server only (not the load generator)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(env["MODELYARD_HOME"]) / f"serve-{port}.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [MODELYARD, "serve", model, *settings, "--port", str(port)],
            env={**env, **(server_env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        ready_s = _wait_ready(url, server)
        time.sleep(settle_s)
        load_before = os.getloadavg()[0]
        cpu_before = tree_cpu_s(server.pid)
        bench = [MODELYARD, "bench", url, "-c", str(concurrency), "--duration", duration]
        done = subprocess.run(
            [*bench, *bench_args, "--no-ceiling", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        cpu = tree_cpu_s(server.pid) - cpu_before
        if done.returncode != 0:
            raise SystemExit(f"modelyard bench {url} failed:\n{done.stderr[-2000:]}")
        answer = json.loads(done.stdout[done.stdout.index("{") :])
        probed = probe(url) if probe is not None else {}
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    level = answer["levels"][0]
    return {
        "images_per_s": level["throughput"],
        "p50_ms": level["p50_ms"],
        "p99_ms": level["p99_ms"],
        "errors": level["errors"],
        "requests": level["requests"],
        "server_cpu_us_per_request": cpu / max(level["requests"], 1) * 1e6,
        "ready_s": ready_s,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        **probed,
    }
