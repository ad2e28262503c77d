"""Server CPU time per request, per concurrency level: the figure that survives a busy box.

    .venv/bin/python benchmarks/serving/cpu_per_request.py --bundle BUNDLE_DIR \
        [--peer modelyard|starlette_ort|mlserver] [--settings 'k=v ...'] [--repeat 2]

Wall-clock req/s on this 2-core machine moves with whatever else runs (the load
generator shares the cores, and other people's jobs come and go). CPU seconds the
server spends per answered request barely move, so each level records both: the
`modelyard bench` figures, and utime+stime of the server's process tree read from
/proc before and after the level, split into the main (event-loop) thread and all
other threads (ONNX Runtime, batcher, prediction log). Also the 1-minute load
average and the share of the CPU that other processes used during the level.

Each level runs `modelyard bench URL -c N --duration D --warmup 0s --no-ceiling`
after one unmeasured warm-up level, so the CPU window and the request count cover
the same requests (plus one preflight request).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run_peers import (
    MODELYARD,
    busy_jiffies,
    free_port,
    mlflow_body,
    post_ok,
    prepare,
    stop,
    tree_pids,
    v2_body,
)

HZ = os.sysconf("SC_CLK_TCK")


def thread_jiffies(root: int) -> tuple[int, int]:
    """(main thread, every other thread) utime+stime over the process tree of ``root``."""
    main = other = 0
    for pid in tree_pids(root):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used = int(fields[11]) + int(fields[12])
            if pid == root and int(tid) == root:
                main += used
            else:
                other += used
    return main, other


def bench_level(url: str, name: str, level: int, duration: str, extra: list[str]) -> dict:
    command = [str(MODELYARD), "bench", url, "--model", name, "-c", str(level)]
    command += ["--duration", duration, "--warmup", "0s", "--shape", "1,28,28", "--json"]
    command += ["--no-ceiling", *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"bench failed: {result.stderr.strip()[-600:]}")
    return json.loads(result.stdout)["levels"][0]


def measure(pid: int, url: str, name: str, level: int, duration: str, extra: list[str]) -> dict:
    load = os.getloadavg()[0]
    main0, other0 = thread_jiffies(pid)
    busy0, wall0 = busy_jiffies(), time.time()
    child0 = os.times()
    figures = bench_level(url, name, level, duration, extra)
    child1 = os.times()
    main1, other1 = thread_jiffies(pid)
    busy1, wall1 = busy_jiffies(), time.time()
    server = (main1 - main0) + (other1 - other0)
    generator = HZ * (
        child1.children_user
        + child1.children_system
        - child0.children_user
        - child0.children_system
    )
    capacity = (wall1 - wall0) * HZ * (os.cpu_count() or 1)
    requests = max(1, figures["requests"] + 1)  # + the preflight request
    return {
        "concurrency": level,
        "throughput": round(figures["throughput"], 1),
        "p50_ms": figures["p50_ms"],
        "p99_ms": figures["p99_ms"],
        "errors": figures["errors"],
        "requests": figures["requests"],
        "server_cpu_us_per_request": round(1e6 * server / HZ / requests, 1),
        "main_thread_cpu_us_per_request": round(1e6 * (main1 - main0) / HZ / requests, 1),
        "other_threads_cpu_us_per_request": round(1e6 * (other1 - other0) / HZ / requests, 1),
        "generator_cpu_us_per_request": round(1e6 * generator / HZ / requests, 1),
        "others_cpu_share": round(max(0.0, (busy1 - busy0 - server - generator) / capacity), 3),
        "load1_before": round(load, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--peer", default="modelyard")
    parser.add_argument("--model-name", default="mnist5k-cnn")
    parser.add_argument("--modelyard-home", default="/tmp/servebench")
    parser.add_argument("--settings", default="", help="modelyard serve key=value overrides")
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--bench-extra", default="", help="extra `modelyard bench` arguments")
    parser.add_argument(
        "--src",
        help="modelyard: serve from this source tree instead (a baseline commit, "
        "e.g. `git archive COMMIT src | tar -x -C /tmp/baseline`, then /tmp/baseline/src)",
    )
    parser.add_argument("--out", help="write the JSON here too")
    args = parser.parse_args()
    args.modelyard_settings = args.settings
    port = free_port()
    command, env, cwd, name, path = prepare(args.peer, args, port)
    if args.src:
        env["PYTHONPATH"] = f"{args.src}:{env['PYTHONPATH']}"
    url = f"http://127.0.0.1:{port}"
    body = mlflow_body() if args.peer == "mlflow" else v2_body()
    process = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    extra = args.bench_extra.split()
    report: dict = {"peer": args.peer, "src": args.src, "command": " ".join(command), "runs": []}
    try:
        deadline = time.time() + 60
        while not post_ok(url + path, body):
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{args.peer} did not start")
            time.sleep(0.05)
        bench_level(url, name, 32, "3s", extra)  # warm-up, not measured
        for run in range(args.repeat):
            for level in (int(v) for v in args.levels.split(",")):
                row = {
                    "run": run + 1,
                    **measure(process.pid, url, name, level, args.duration, extra),
                }
                report["runs"].append(row)
                print(json.dumps(row), flush=True)
    finally:
        stop(process, args.peer)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
