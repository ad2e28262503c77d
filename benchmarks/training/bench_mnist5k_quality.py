"""Accuracy and wall time of the default CNN on mnist5k, over several held-out splits.

Each split seed draws a different stratified test set of 500 real MNIST images
that the model never saw while training or early-stopping, so the spread across
seeds shows how the model generalises rather than how well it fits one split.

    .venv/bin/python benchmarks/training/bench_mnist5k_quality.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="data.split_seed values"
    )
    parser.add_argument("--overrides", nargs="*", default=[], help="extra config overrides")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    os.environ.setdefault("MODELYARD_HOME", tempfile.mkdtemp(prefix="modelyard-bench-"))
    import torch

    from modelyard.config import compose_config
    from modelyard.train.run import train

    rows = []
    for seed in args.seeds:
        cfg = compose_config(
            ["task=mnist5k", f"data.split_seed={seed}", "train.progress_bar=false", *args.overrides]
        )
        started = time.perf_counter()
        result = train(cfg)
        total = time.perf_counter() - started
        rows.append(
            {
                "split_seed": seed,
                "test_accuracy": result.metrics["test_accuracy"],
                "test_macro_f1": result.metrics["test_macro_f1"],
                "epochs": result.epochs,
                "fit_seconds": round(result.fit_seconds, 1),
                "train_command_seconds": round(total, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    accuracies = [r["test_accuracy"] for r in rows]
    summary = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
        "overrides": args.overrides,
        "runs": rows,
        "mean_test_accuracy": statistics.mean(accuracies),
        "min_test_accuracy": min(accuracies),
        "max_fit_seconds": max(r["fit_seconds"] for r in rows),
    }
    print(
        f"mnist5k default CNN: test accuracy mean {summary['mean_test_accuracy']:.4f} "
        f"(min {summary['min_test_accuracy']:.4f}) over split seeds {args.seeds}; "
        f"slowest fit {summary['max_fit_seconds']:.0f}s"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
