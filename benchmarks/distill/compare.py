"""A student distilled from a teacher against the same student trained plainly.

Runs, through the real commands and one MODELYARD_HOME:

1. the teacher (``modelyard train task=mnist5k``, the quickstart recipe) unless
   ``--teacher`` names one already registered;
2. ``modelyard train`` of the student (``--student`` overrides) for exactly
   ``--epochs`` epochs;
3. ``modelyard distill teacher=<teacher>`` of the same student, same epochs and seed.

Each side's test accuracy (on the task's test split, through ONNX Runtime), its
bundle's cost report (multiply-adds, one-thread latency per example at batch 32),
its fit time and the wall time of the whole command are written to ``--out``
(JSON), with the load average before and after each command and the CPU's flags.

    nice -n 5 .venv/bin/python benchmarks/distill/compare.py --home /tmp/distill-home \\
        --epochs 20 --out benchmarks/distill/results/mnist5k-cnn_small.json
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

MODELYARD = str(Path(sys.executable).parent / "modelyard")


def _flags() -> list[str]:
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return [f for f in wanted if f in line.split()]
    return []


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _fit_seconds(env: dict[str, str], run_id: str) -> float:
    """The run's ``fit_seconds`` metric (the Lightning fit alone), read from MLflow."""
    code = (
        "import sys; from modelyard import tracking; from mlflow.tracking import MlflowClient; "
        "tracking.configure(); "
        "print(MlflowClient().get_run(sys.argv[1]).data.metrics['fit_seconds'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, run_id], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _run(words: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one modelyard command with ``--json``; its answer plus wall time and load."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(
        [MODELYARD, *words, "--json"], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(words)} failed:\n{done.stderr[-3000:]}")
    answer = json.loads(done.stdout[done.stdout.index("{") :])
    bundle = json.loads((Path(answer["bundle"]) / "bundle.json").read_text())
    cost = bundle["cost"]
    return {
        "command": "modelyard " + " ".join(words),
        "test_accuracy": answer["metrics"]["test_accuracy"],
        "test_macro_f1": answer["metrics"].get("test_macro_f1"),
        "macs_per_example": cost["macs_per_example"],
        "parameters": cost["parameters"],
        "latency_ms_per_example_batch32": cost["latency_ms_per_example_batch32"],
        "latency_ms_batch1": cost["latency_ms_batch1"],
        "fit_seconds": _fit_seconds(env, answer["run_id"]),
        "wall_seconds": wall,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "model_uri": answer["model_uri"],
        "run_id": answer["run_id"],
        "distilled_from": bundle.get("distilled_from"),
    }


def _inspect(uri: str, env: dict[str, str]) -> dict[str, Any]:
    """A registered teacher's test accuracy and cost, from ``modelyard inspect``."""
    done = subprocess.run(
        [MODELYARD, "inspect", uri, "--json"], env=env, capture_output=True, text=True, check=True
    )
    data = json.loads(done.stdout[done.stdout.index("{") :])
    cost = data["cost"]
    return {
        "model_uri": f"models:/{data['name']}/{data['version']}",
        "test_accuracy": data["metrics"]["test_accuracy"],
        "macs_per_example": cost["macs_per_example"],
        "parameters": cost["parameters"],
        "latency_ms_per_example_batch32": cost["latency_ms_per_example_batch32"],
        "latency_ms_batch1": cost["latency_ms_batch1"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="MODELYARD_HOME to use")
    parser.add_argument("--task", default="mnist5k")
    parser.add_argument("--teacher", help="a registered teacher; default: train one")
    parser.add_argument("--teacher-overrides", nargs="*", default=[])
    parser.add_argument("--student", nargs="*", default=["model=cnn_small"])
    parser.add_argument("--name", default="cnn_small", help="student's name in model names")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--distill", nargs="*", default=[], help="distill.* overrides")
    parser.add_argument("--out", type=Path, required=True, help="JSON; sides kept if it exists")
    parser.add_argument(
        "--sides", nargs="*", default=["plain", "distilled"], help="plain and/or distilled"
    )
    args = parser.parse_args()
    env = {**os.environ, "MODELYARD_HOME": str(args.home)}
    quiet = ["train.progress_bar=false"]
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results |= {
        "machine": {"cpu": _cpu_model(), "flags": _flags(), "cores": os.cpu_count()},
        "task": args.task,
        "epochs": args.epochs,
    }
    teacher = ""
    if "distilled" in args.sides:
        if args.teacher and "teacher" not in results:
            results["teacher"] = _inspect(args.teacher, env)
        if "teacher" not in results:
            results["teacher"] = _run(
                ["train", f"task={args.task}", *quiet, *args.teacher_overrides], env
            )
        teacher = results["teacher"]["model_uri"]
    same = [
        f"task={args.task}",
        *args.student,
        f"train.max_epochs={args.epochs}",
        f"train.min_epochs={args.epochs}",
        *quiet,
    ]
    base = f"{args.task}-{args.name}"
    if "plain" in args.sides:
        results["plain"] = _run(["train", *same, f"task.model_name={base}-plain"], env)
    if "distilled" in args.sides:
        results["distilled"] = _run(
            [
                "distill",
                f"teacher={teacher}",
                *same,
                f"task.model_name={base}-distilled",
                *args.distill,
            ],
            env,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
