"""The mnist5k frontier: test accuracy against served images/s, in one run on one machine.

    .venv/bin/python benchmarks/frontier/run.py --home /tmp/frontier-home \\
        --json benchmarks/frontier/results/frontier-<date>.json --train-budget-min 38
    .venv/bin/python benchmarks/frontier/report.py \\
        benchmarks/frontier/results/frontier-<date>.json --png benchmarks/frontier/frontier.png

Rows: the old default CNN (``model=cnn train=default``, the baseline of every ratio),
the new default (``task=mnist5k`` as it is: ``model=cnn_fast train=averaged``), plain
``cnn_small``, the new default channel-pruned (``train.prune=channels``), a
``cnn_fast`` student distilled from the old default CNN of the same split seed
(``modelyard distill``), and static INT8 copies of both defaults
(``modelyard export quantize --static``).

Steps, in this order (each result is written to ``--json`` as soon as it exists, and a
rerun with the same ``--home`` and ``--json`` skips what is already there):

1. split seed 0 of every row, trained through ``modelyard.train.run.train`` as
   ``modelyard train`` would (the distilled and INT8 rows through the CLI);
2. every seed-0 bundle served by ``modelyard serve <bundle folder>`` (one at a time,
   same settings) and loaded by ``modelyard bench -c 32`` (v2 JSON, one image per
   request), the bundles alternated over ``--rounds`` rounds, order rotated each round;
3. the other split seeds, every row of seed 1, then of seed 2 ..., until
   ``--train-budget-min`` is spent, so a slower spell of the machine falls on all
   rows alike.

(``results/mnist5k.json`` was written by the previous version of this script, whose
rows were the old default and its pruned / distilled / INT8 variants.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from serving import MODELYARD, serve_and_bench

OLD_DEFAULT = ["model=cnn", "train=default"]
"""The 29 M-MAC CNN recipe that was ``task=mnist5k``'s default until 2026-12-06, which
this run measures against (the default is now ``model=cnn_fast train=averaged``)."""
OLD = "old default CNN"
NEW = "new default cnn_fast"
SMALL = "cnn_small [16,32]"
PRUNED = "cnn_fast pruned 0.5"
DISTILLED = "cnn_fast distilled"
INT8_NEW = "cnn_fast static INT8"
INT8_OLD = "old default static INT8"
CANDIDATES: dict[str, list[str]] = {
    OLD: OLD_DEFAULT,
    NEW: [],  # task=mnist5k as it is: model=cnn_fast train=averaged
    SMALL: ["model=cnn_small", "train=default"],
    PRUNED: ["train.prune=channels", "train.prune_amount=0.5"],
}
"""Recipes trained on every split seed through ``train()``: the old default first (the
baseline of every ratio). The pruned row prunes the new default's recipe by half with the
default 3 fine-tuning epochs, as a user gets it. (Before 7a97ee7 the fine-tuning inherited
``train.ema=0.995`` and 3 epochs gave 0.726 test accuracy on split seed 0, so the
2026-12-06 runs fine-tuned 10 epochs; since then the fine-tuning trains plain weights.)"""
BASELINE = OLD
DISTILL_STUDENT = ["model=cnn_fast"]
"""The distilled student: the new default's recipe (``train=averaged`` comes with the
task), taught by the old default CNN trained on the same split seed."""


class Results:
    """The run's JSON, saved after every step so an interrupted run keeps its rows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        self.data.setdefault("trained", {})
        self.data.setdefault("serving", [])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2) + "\n")


def _cpu() -> dict[str, Any]:
    """The CPU's model name and its AVX / AMX flags (what INT8 and ORT speed depend on)."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    words = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    flags = sorted({w for w in words if w.startswith(("avx", "amx"))})
    return {"cpu": model, "flags": flags, "cores": os.cpu_count()}


def _cost(bundle_path: Path) -> dict[str, Any]:
    manifest = json.loads((bundle_path / "bundle.json").read_text())
    cost = manifest.get("cost") or {}
    return {"macs_per_example": cost.get("macs_per_example"), "parameters": cost.get("parameters")}


def train_with_row(task: str, overrides: list[str], seed: int) -> tuple[Any, dict[str, Any]]:
    """Train ``task`` on split ``seed`` through ``train()`` (no registration, no progress
    bar): the TrainResult and its row (accuracy, fit and train() seconds, load, cost)."""
    from modelyard.config import compose_config
    from modelyard.train.run import train

    words = [f"task={task}", f"data.split_seed={seed}", "train.progress_bar=false"]
    words += ["tracking.register=false", *overrides]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = train(compose_config(words))
    return result, {
        "overrides": overrides,
        "split_seed": seed,
        "bundle": str(result.bundle_path),
        "test_accuracy": result.metrics["test_accuracy"],
        "epochs": result.epochs,
        "fit_seconds": result.fit_seconds,
        "train_seconds": time.perf_counter() - started,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        **_cost(result.bundle_path),
    }


def _train(task: str, overrides: list[str], seed: int) -> dict[str, Any]:
    return train_with_row(task, overrides, seed)[1]


def _cli(words: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """Run ``modelyard <words> --json``; its JSON answer and the command's wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [MODELYARD, *words, "--json"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"modelyard {' '.join(words)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout[done.stdout.index("{") :]), time.perf_counter() - started


def _distill(
    task: str, teacher: str, seed: int, extra: list[str], env: dict[str, str]
) -> dict[str, Any]:
    words = ["distill", f"teacher={teacher}", f"task={task}", *DISTILL_STUDENT]
    words += [f"data.split_seed={seed}", "train.progress_bar=false", "tracking.register=false"]
    words += extra
    load_before = os.getloadavg()[0]
    answer, wall = _cli(words, env)
    return {
        "command": "modelyard " + " ".join(words),
        "split_seed": seed,
        "teacher": teacher,
        "bundle": answer["bundle"],
        "test_accuracy": answer["metrics"]["test_accuracy"],
        "fit_seconds": answer["fit_seconds"],
        "train_seconds": wall,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        **_cost(Path(answer["bundle"])),
    }


def _quantize(source: str, seed: int, out: Path, env: dict[str, str]) -> dict[str, Any]:
    words = ["export", "quantize", source, "--static", "--out", str(out), "--overwrite"]
    answer, wall = _cli(words, env)
    return {
        "command": "modelyard " + " ".join(words),
        "split_seed": seed,
        "bundle": answer["bundle"],
        "test_accuracy": answer["accuracy_int8"],
        "accuracy_fp32": answer["accuracy_fp32"],
        "argmax_agreement": answer["argmax_agreement"],
        "ort_batch32_ms_fp32": answer["latency_fp32_ms"],
        "ort_batch32_ms_int8": answer["latency_int8_ms"],
        "quantize_seconds": wall,
        "speed_verdict": answer.get("quantization", {}).get("speed_verdict"),
        **_cost(Path(answer["bundle"])),
    }


def _serve_rounds(
    results: Results, env: dict[str, str], rounds: int, duration: str, settings: str
) -> None:
    """Serve every seed-0 bundle with ``settings``, alternating them over ``rounds``."""
    seed0 = {name: runs["0"]["bundle"] for name, runs in results.data["trained"].items()}
    names = list(seed0)
    rows: list[dict[str, Any]] = results.data["serving"]
    done = {row["round"] for row in rows if row["settings"] == settings}
    for round_ in range(rounds):
        if round_ in done:
            continue
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            row = serve_and_bench(seed0[name], env, duration, 32, settings.split())
            rows.append({"model": name, "settings": settings, "round": round_, **row})
            print(
                f"[{settings}] round {round_} {name}: {row['images_per_s']:.0f} img/s", flush=True
            )
        results.save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="MODELYARD_HOME for all runs")
    parser.add_argument("--json", type=Path, required=True, help="results; kept and extended")
    parser.add_argument("--task", default="mnist5k")
    parser.add_argument("--seeds", type=int, default=5, help="split seeds 0..N-1")
    parser.add_argument(
        "--train-budget-min",
        type=float,
        help="start no further split seed (every row of it) once this many minutes have "
        "passed since the run started",
    )
    parser.add_argument("--rounds", type=int, default=3, help="serving rounds")
    parser.add_argument("--duration", default="10s", help="measured time per bench")
    parser.add_argument(
        "--serve-settings",
        nargs="+",
        default=[""],
        help="serve overrides, one quoted string per setting measured ('' = defaults); "
        "the first before the seeds 1..N-1, the others after them",
    )
    parser.add_argument("--overrides", nargs="*", default=[], help="for every training run")
    args = parser.parse_args()
    args.home.mkdir(parents=True, exist_ok=True)
    os.environ["MODELYARD_HOME"] = str(args.home)
    env = dict(os.environ)
    results = Results(args.json)
    results.data |= {
        "machine": _cpu(),
        "python": platform.python_version(),
        "task": args.task,
        "bench": f"modelyard bench -c 32 --duration {args.duration} --no-ceiling (v2 JSON)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    # every invocation that wrote to this file (training and serving may be separate)
    results.data.setdefault("commands", []).append(
        {
            "command": results.data["command"],
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    results.data["baseline"] = BASELINE
    trained: dict[str, dict[str, Any]] = results.data["trained"]
    stop = None if args.train_budget_min is None else time.time() + args.train_budget_min * 60

    def step(name: str, seed: int, make: Any) -> None:
        runs = trained.setdefault(name, {})
        if str(seed) not in runs:
            runs[str(seed)] = make()
            results.save()
            print(name, seed, runs[str(seed)]["test_accuracy"], flush=True)

    def one_seed(seed: int) -> None:
        for name, overrides in CANDIDATES.items():
            step(name, seed, lambda o=overrides: _train(args.task, [*args.overrides, *o], seed))
        teacher = trained[OLD][str(seed)]["bundle"]
        step(DISTILLED, seed, lambda: _distill(args.task, teacher, seed, args.overrides, env))
        for name, base in ((INT8_NEW, NEW), (INT8_OLD, OLD)):
            out = args.home / f"int8-static-{base.split()[-1]}-{seed}"
            source = trained[base][str(seed)]["bundle"]
            step(name, seed, lambda s=source, o=out: _quantize(s, seed, o, env))

    one_seed(0)
    first, *later = args.serve_settings
    _serve_rounds(results, env, args.rounds, args.duration, first)
    for seed in range(1, args.seeds):
        if stop is not None and time.time() > stop:
            print(f"training budget spent: seeds {seed}..{args.seeds - 1} not run", flush=True)
            break
        one_seed(seed)
    for settings in later:
        _serve_rounds(results, env, args.rounds, args.duration, settings)
    results.data["load_average_end"] = os.getloadavg()
    results.save()


if __name__ == "__main__":
    main()
