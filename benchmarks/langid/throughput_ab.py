"""Batched sentences per second of two modelyard source trees, side by side.

    .venv/bin/python benchmarks/langid/throughput_ab.py --bundle B --data-dir D \\
        --before ../before/src --after src [--rounds 3] [--passes 5] [--cpu 1]

Each round runs `throughput.py` once from each tree (the tree first on PYTHONPATH),
pinned to one CPU, and prints both trees' medians per wall and per CPU second with
the load average. The trees alternate, so a change in the machine's load hits both
alike; on a shared machine compare the per-CPU-second figures, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_tree(src: Path, args: argparse.Namespace) -> dict[str, float]:
    """One `throughput.py` run from ``src``, pinned to ``args.cpu``: its medians."""
    command = [
        sys.executable,
        str(HERE / "throughput.py"),
        f"--bundle={args.bundle}",
        f"--data-dir={args.data_dir}",
        f"--passes={args.passes}",
    ]
    output = subprocess.run(
        command,
        env={**os.environ, "PYTHONPATH": str(src.resolve())},
        preexec_fn=lambda: os.sched_setaffinity(0, {args.cpu}),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = dict(re.findall(r"sentences per (wall|CPU) second: median ([\d,]+)", output))
    return {what: float(value.replace(",", "")) for what, value in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--before", required=True, type=Path, help="src/ of the old tree")
    parser.add_argument("--after", required=True, type=Path, help="src/ of the new tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=1, help="the one CPU both trees run on")
    args = parser.parse_args()
    for round_ in range(args.rounds):
        rates = {}
        for side, src in (("before", args.before), ("after", args.after)):
            rates[side] = run_tree(src, args)
            print(
                f"round {round_} {side:6s} {rates[side]['wall']:8,.0f} /wall s  "
                f"{rates[side]['CPU']:8,.0f} /CPU s  load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        ratio = rates["after"]["CPU"] / rates["before"]["CPU"]
        print(f"round {round_} after/before per CPU s {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
