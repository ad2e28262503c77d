"""Small vs default CNN under ``modelyard serve`` + ``modelyard bench -c 32``, code A vs code B.

    .venv/bin/python benchmarks/serving/small_vs_default.py --home HOME \
        --small SMALL_BUNDLE --default DEFAULT_BUNDLE \
        --code before=/tmp/base/src --code after=src \
        [--settings "" "workers=2 intra_op_threads=1"] [--rounds 3] [--duration 10s] \
        [--out results/x.json]

Every (code, settings, bundle) arm is served fresh, one at a time, and the arms are
alternated over ``--rounds`` rounds with the order rotated each round, so a change in
the machine's load hits every arm alike. Each arm's code is chosen by ``PYTHONPATH``
(a ``git worktree`` of the old commit for "before"). Besides images/s and p50/p99 it
records the server's CPU seconds per answered request (utime + stime of the server's
process tree, from /proc, over the bench run) and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontier"))
import serving  # benchmarks/frontier/serving.py: serve + bench one bundle


def _arms(args: argparse.Namespace) -> list[dict[str, str]]:
    arms = []
    for code in args.code:
        label, _, path = code.partition("=")
        for settings in args.settings:
            for kind in ("small", "default"):
                arms.append(
                    {
                        "code": label,
                        "pythonpath": str(Path(path).resolve()),
                        "settings": settings,
                        "bundle": kind,
                    }
                )
    return arms


def _summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    keys = sorted({(r["code"], r["settings"]) for r in rows})
    for code, settings in keys:
        mine = [r for r in rows if r["code"] == code and r["settings"] == settings]
        by_round: dict[int, dict[str, float]] = {}
        for r in mine:
            by_round.setdefault(r["round"], {})[r["bundle"]] = r["images_per_s"]
        ratios = [v["small"] / v["default"] for v in by_round.values() if len(v) == 2]
        entry: dict[str, Any] = {"code": code, "settings": settings or "(defaults)"}
        for kind in ("small", "default"):
            part = [r for r in mine if r["bundle"] == kind]
            entry[kind] = {
                "images_per_s": statistics.median(r["images_per_s"] for r in part),
                "p50_ms": statistics.median(r["p50_ms"] for r in part),
                "p99_ms": statistics.median(r["p99_ms"] for r in part),
                "server_cpu_us_per_request": statistics.median(
                    r["server_cpu_us_per_request"] for r in part
                ),
            }
        entry["ratio_small_over_default"] = {
            "median": statistics.median(ratios),
            "per_round": ratios,
        }
        out.append(entry)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="MODELYARD_HOME")
    parser.add_argument("--small", type=Path, required=True)
    parser.add_argument("--default", type=Path, required=True)
    parser.add_argument("--code", action="append", required=True, help="label=path/to/src")
    parser.add_argument("--settings", nargs="+", default=[""])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    bundles = {"small": str(args.small), "default": str(args.default)}
    arms = _arms(args)
    rows: list[dict[str, Any]] = []
    for round_ in range(args.rounds):
        shift = round_ % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            env = {**os.environ, "MODELYARD_HOME": str(args.home), "PYTHONPATH": arm["pythonpath"]}
            row = serving.serve_and_bench(
                bundles[arm["bundle"]],
                env,
                args.duration,
                32,
                arm["settings"].split(),
                settle_s=1.0,  # let start-up work (gc, log table) settle
                bench_args=["--warmup", "0s"],
            )
            rows.append({**arm, "round": round_, **row})
            print(
                f"round {round_} {arm['code']:>7} {arm['settings'] or '(defaults)':<28} "
                f"{arm['bundle']:<7} {row['images_per_s']:8.1f} img/s  p50 {row['p50_ms']:.2f}"
                f"  p99 {row['p99_ms']:.2f}  cpu/req {row['server_cpu_us_per_request']:.0f} us"
                f"  load {row['load_before']:.2f}",
                flush=True,
            )
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(sys.argv),
        "rows": rows,
        "summary": _summary(rows),
    }
    print(json.dumps(result["summary"], indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
