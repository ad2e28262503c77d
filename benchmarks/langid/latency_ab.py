"""Served single-sentence latency of two modelyard source trees, side by side.

    .venv/bin/python benchmarks/langid/latency_ab.py --bundle B --data-dir D \\
        --before ../before/src --after src [--rounds 3] [-n 1000]

Each round starts `modelyard serve B intra_op_threads=1` once from each tree (the
tree is put first on PYTHONPATH), pinned to CPU 1, and times the same sentences one
request at a time from a client pinned to CPU 0 (`latency.served_latencies`). The
trees alternate, so a change in the machine's load hits both alike; the load average
is printed with each figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import ud_split
from latency import free_port, served_latencies, summary, wait_ready


def served_p50(src: Path, bundle: str, name: str, texts: list[str]) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    command = [str(REPO / ".venv" / "bin" / "modelyard"), "serve", bundle]
    server = subprocess.Popen(
        [*command, "--port", str(port), "intra_op_threads=1"],
        env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, {1}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    affinity = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {0})
        wait_ready(port, server)
        latencies, _ = served_latencies(port, name, texts)
    finally:
        server.terminate()
        server.wait(timeout=30)
        os.sched_setaffinity(0, affinity)
    return summary(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--before", required=True, type=Path, help="src/ of the old tree")
    parser.add_argument("--after", required=True, type=Path, help="src/ of the new tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-n", type=int, default=1000)
    args = parser.parse_args()
    from modelyard.bundle import load

    name = load(args.bundle).name
    texts = ud_split.load(args.data_dir).test.texts[: args.n]
    for round_ in range(args.rounds):
        for side, src in (("before", args.before), ("after", args.after)):
            result = served_p50(src, args.bundle, name, texts)
            print(
                f"round {round_} {side:6s} p50 {result['p50_us']:6.0f} us  p90 "
                f"{result['p90_us']:6.0f}  p99 {result['p99_us']:6.0f}  "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
