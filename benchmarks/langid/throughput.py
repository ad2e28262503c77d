"""Batched sentences per second of a langid bundle, features included, on whatever
CPUs this process may use: run it under `taskset -c 0` for one pinned core.

    taskset -c 0 .venv/bin/python benchmarks/langid/throughput.py --bundle B --data-dir D

Predicts the held-out test split through `Predictor.predict_texts` (encoding,
ONNX Runtime with one thread) ``--passes`` times and prints each pass's rate,
per wall second and per CPU second of this process (which a shared, loaded core
does not slow down), with the CPU flags and load average.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ud_split
from modelyard_side import Modelyard


def cpu_flags() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return " ".join(sorted(set(re.findall(r"\bavx\S*", text))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    texts = ud_split.load(args.data_dir).test.texts
    model = Modelyard(args.bundle)
    model.predict(texts[:256])  # warm up
    rates, cpu_rates = [], []
    for _ in range(args.passes):
        started, cpu_started = time.perf_counter(), time.process_time()
        model.predict(texts)
        rates.append(len(texts) / (time.perf_counter() - started))
        cpu_rates.append(len(texts) / (time.process_time() - cpu_started))
    print(f"cpus {sorted(os.sched_getaffinity(0))}; flags {cpu_flags()}")
    print(f"load average {os.getloadavg()}; {len(texts)} sentences per pass")
    for what, values in (("wall", rates), ("CPU", cpu_rates)):
        median = sorted(values)[len(values) // 2]
        print(
            f"sentences per {what} second: median {median:,.0f}, min {min(values):,.0f}, "
            f"max {max(values):,.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
