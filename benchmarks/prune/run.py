"""Default CNN vs the same model channel-pruned (and magnitude-pruned), on one machine.

    nice -n 5 .venv/bin/python benchmarks/prune/run.py --amounts 0.5 0.75 \
        --json benchmarks/prune/results/mnist5k.json

The default recipe (``task=mnist5k``) is fitted once; each pruned variant starts from
that same fitted model (the fit is reused, not repeated: same seed, same epochs), is
pruned, fine-tuned for ``train.prune_finetune_epochs`` and exported through the normal
``train()`` path, so every row is a real bundle with its own cost report and test
accuracy through ONNX Runtime. At the end all graphs are timed again side by side in
alternating rounds (one ORT thread, batch 32, real test images), because the cost
reports were each measured at a different moment of a shared machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from modelyard import bundle
from modelyard.config import compose_config
from modelyard.export.cost import machine, measure_latency
from modelyard.modality import modality_for
from modelyard.train import run as train_run


def _reuse_first_fit() -> None:
    """Make ``train()`` fit once and hand every later call a copy of that fit."""
    real_fit = train_run._fit
    cache: dict[str, Any] = {}

    def fit(*args: Any, **kwargs: Any) -> Any:
        if "first" not in cache:
            cache["first"] = real_fit(*args, **kwargs)
        module, epochs, world = cache["first"]
        return copy.deepcopy(module), epochs, world

    train_run._fit = fit  # type: ignore[assignment]  # benchmark-only patch


def _run_record(run_id: str, extra: list[str]) -> dict[str, Any] | None:
    """The run's pruning.json (for a bundle written before bundle.json carried it)."""
    if not extra:
        return None
    import mlflow

    return dict(mlflow.artifacts.load_dict(f"runs:/{run_id}/pruning.json"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--amounts", type=float, nargs="+", default=[0.5, 0.75])
    parser.add_argument("--magnitude", type=float, default=0.5, help="0: skip")
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--task", default="mnist5k")
    parser.add_argument("--overrides", nargs="*", default=[])
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MODELYARD_HOME", "/tmp/prune_bench_home")
    base = [f"task={args.task}", "train.progress_bar=false", "tracking.register=false"]
    base += args.overrides
    tune = f"train.prune_finetune_epochs={args.finetune_epochs}"
    variants: list[tuple[str, list[str]]] = [("default CNN", [])]
    for amount in args.amounts:
        variants.append(
            (f"channels {amount}", ["train.prune=channels", f"train.prune_amount={amount}", tune])
        )
    if args.magnitude:
        variants.append(
            (
                f"magnitude {args.magnitude}",
                ["train.prune=magnitude", f"train.prune_amount={args.magnitude}", tune],
            )
        )
    _reuse_first_fit()
    rows: list[dict[str, Any]] = []
    for name, extra in variants:
        started = time.perf_counter()
        result = train_run.train(compose_config([*base, *extra]))
        manifest = bundle.load(result.bundle_path).manifest
        rows.append(
            {
                "variant": name,
                "overrides": extra,
                "bundle": str(result.bundle_path),
                "test_accuracy": result.metrics["test_accuracy"],
                "macs_per_example": manifest["cost"]["macs_per_example"],
                "parameters": manifest["cost"]["parameters"],
                "cost_latency_ms_per_example_batch32": manifest["cost"][
                    "latency_ms_per_example_batch32"
                ],
                "pruning": manifest.get("pruning") or _run_record(result.run_id, extra),
                "fit_seconds": result.fit_seconds,
                "wall_seconds": time.perf_counter() - started,
                "load_after": os.getloadavg(),
            }
        )
        print(name, {k: rows[-1][k] for k in ("test_accuracy", "macs_per_example")}, flush=True)
    # Side by side: alternate the graphs round by round, median of each's medians.
    cfg = compose_config(base)
    kind = modality_for("image")
    dataset = train_run.load_dataset_for(cfg)
    examples = kind.split_examples(dataset, "test").examples[:64]
    inputs = kind.model_inputs(examples, train_run.input_spec(cfg))
    timings: dict[str, list[float]] = {row["variant"]: [] for row in rows}
    loads = []
    for _ in range(args.rounds):
        for row in rows:
            onnx_path = Path(row["bundle"]) / "model.onnx"
            timings[row["variant"]].append(measure_latency(onnx_path, inputs, 20)[1])
        loads.append(os.getloadavg()[0])
    for row in rows:
        row["side_by_side_ms_per_example_batch32"] = statistics.median(timings[row["variant"]])
    default = rows[0]["side_by_side_ms_per_example_batch32"]
    for row in rows:
        row["speedup_vs_default"] = default / row["side_by_side_ms_per_example_batch32"]
    report = {
        "rows": rows,
        "machine": machine(),
        "python": platform.python_version(),
        "load_average_during_timing": [min(loads), max(loads)],
        "rounds": args.rounds,
        "finetune_epochs": args.finetune_epochs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    for row in rows:
        print(
            f"{row['variant']:>16}  acc {row['test_accuracy']:.4f}  "
            f"MACs {row['macs_per_example'] / 1e6:6.2f} M  params {row['parameters']:>9,}  "
            f"b32 {row['side_by_side_ms_per_example_batch32'] * 1000:7.1f} us/img  "
            f"x{row['speedup_vs_default']:.2f}"
        )


if __name__ == "__main__":
    main()
