"""Single-sentence latency: modelyard's server over HTTP vs lingua in-process.

    .venv/bin/python benchmarks/langid/latency.py --bundle BUNDLE --data-dir DIR [-n 1000]

Starts `modelyard serve BUNDLE intra_op_threads=1` pinned to one CPU, sends the
test split's sentences one at a time (`POST /v1/models/{name}:predict {"text": ...}`,
sequential, one keep-alive connection, client pinned to the other CPU) and times
each request at the client, and the same connection's `GET /v2/health/live` as the
HTTP floor. Then lingua classifies the same sentences one call at a
time in its own venv on the server's CPU (all 75 languages, and restricted), and
modelyard's Predictor does the same in-process. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import numpy as np
import peers
import ud_split
from modelyard_side import Modelyard
from timing import load_average, time_single


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"modelyard serve exited with {process.returncode} before ready")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/v2/health/ready")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"modelyard serve not ready on port {port} after {timeout:.0f}s")


def served_latencies(
    port: int, name: str, texts: list[str]
) -> tuple[list[float], list[dict[str, object]]]:
    """Client-side latency (µs) of one request per sentence, and the answers
    ({"predictions": [{"label": ..., "probabilities": ...}], ...} each)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    path = f"/v1/models/{name}:predict"
    headers = {"Content-Type": "application/json"}

    def ask(text: str) -> dict[str, object]:
        connection.request("POST", path, body=json.dumps({"text": text}), headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}: {body[:300]!r}")
        return json.loads(body)  # type: ignore[no-any-return]

    for text in texts[:50]:  # warm up the connection and the session
        ask(text)
    latencies, answers = [], []
    for text in texts:
        started = time.perf_counter_ns()
        answers.append(ask(text))
        latencies.append((time.perf_counter_ns() - started) / 1000)
    return latencies, answers


def floor_latencies(port: int, count: int) -> list[float]:
    """Client-side latency (µs) of ``GET /v2/health/live`` on the same kind of
    connection: what any request to this server costs before it does any work."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies = []
    for index in range(count + 50):
        started = time.perf_counter_ns()
        connection.request("GET", "/v2/health/live")
        response = connection.getresponse()
        response.read()
        if index >= 50:  # the first 50 warm the connection up
            latencies.append((time.perf_counter_ns() - started) / 1000)
    return latencies


def summary(latencies_us: list[float]) -> dict[str, float]:
    values = np.asarray(latencies_us)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50_us": p50, "p90_us": p90, "p99_us": p99, "mean_us": float(values.mean())}


def measure(
    bundle_ref: str, texts: list[str], server_cpu: int = 1, client_cpu: int = 0
) -> dict[str, object]:
    """Sequential single-sentence latency: served over HTTP, modelyard in-process and
    lingua in-process, on the same sentences; the server and in-process runs on
    ``server_cpu``, the HTTP client on ``client_cpu``."""
    affinity = os.sched_getaffinity(0)
    load_before = load_average()
    model = Modelyard(bundle_ref)
    port = free_port()
    command = [str(REPO / ".venv" / "bin" / "modelyard"), "serve", str(bundle_ref)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "intra_op_threads=1"],
        preexec_fn=lambda: os.sched_setaffinity(0, {server_cpu}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        os.sched_setaffinity(0, {client_cpu})
        wait_ready(port, server)
        served, answers = served_latencies(port, model.bundle.name, texts)
        floor = floor_latencies(port, len(texts))
        os.sched_setaffinity(0, {server_cpu})
        in_process = time_single(model.predict, texts)
    finally:
        server.terminate()
        server.wait(timeout=30)
        os.sched_setaffinity(0, affinity)
    paths: dict[str, dict[str, float]] = {
        "modelyard serve, HTTP /v1 (client-side)": summary(served),
        "the same server's GET /v2/health/live (HTTP floor, client-side)": summary(floor),
        "modelyard Predictor, in-process": summary(in_process),
    }
    for run in peers.RUNS:
        if run.detector == "lingua" and run.variant in ("all", "restricted"):
            result = peers.run_peer(run, texts, [], server_cpu)
            paths[f"{run.title} ({run.note}), in-process"] = summary(result["latencies_us"])
    served_labels = [answer["predictions"][0]["label"] for answer in answers]  # type: ignore[index]
    agree = sum(a == b for a, b in zip(served_labels, model.predict(texts), strict=True))
    return {
        "n": len(texts),
        "served_equals_in_process": agree,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "example_answer": answers[0],
        "latency": paths,
    }


def table(report: dict) -> str:
    lines = [
        f"{report['n']} sentences, one at a time; served label == in-process label for "
        f"{report['served_equals_in_process']}; load average {report['load_average_before']} "
        f"-> {report['load_average_after']}",
        "",
        "| path | p50 µs | p90 µs | p99 µs | mean µs |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for path, s in report["latency"].items():
        lines.append(
            f"| {path} | {s['p50_us']:,.0f} | {s['p90_us']:,.0f} | {s['p99_us']:,.0f} "
            f"| {s['mean_us']:,.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="a langid_nordic bundle folder")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("-n", type=int, default=1000, help="sentences (from the test split)")
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "latency.json")
    args = parser.parse_args()
    texts = ud_split.load(args.data_dir).test.texts[: args.n]
    report = measure(args.bundle, texts, args.server_cpu, args.client_cpu)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
