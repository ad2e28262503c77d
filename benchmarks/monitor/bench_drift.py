"""Detection and false-alarm rates of `modelyard monitor drift`'s checks.

Trains a model (or takes a bundle), then draws seeded windows from the held-out
images (validation + test: never trained on; the reference profile comes from the
training data) and runs the same checks as `modelyard monitor drift` on each:

* in-distribution windows: any alarm is a false alarm;
* injected drift: inverted, shifted one pixel, brighter, noisy images, a class mix
  that changed, and a subtle brightness change (to show where detection ends).

    .venv/bin/python benchmarks/monitor/bench_drift.py --task digits --trials 40 \
        --windows 100 200 --json benchmarks/monitor/drift_digits.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _brighter(amount: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda images: np.clip(images.astype(int) + amount, 0, 255).astype(np.uint8)


def _noisy(images: np.ndarray) -> np.ndarray:
    noise = np.random.default_rng(123).normal(0, 40, images.shape)
    return np.clip(images + noise, 0, 255).astype(np.uint8)


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "in-distribution (false alarms)": lambda images: images,
    "inverted": lambda images: 255 - images,
    "shifted 1 px right": lambda images: np.roll(images, 1, axis=2),
    "brighter +40": _brighter(40),
    "gaussian noise sd 40": _noisy,
    "subtle: brighter +8": _brighter(8),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits", help="digits (seconds) or mnist5k")
    parser.add_argument("--bundle", type=Path, help="use this bundle instead of training")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--windows", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    os.environ.setdefault("MODELYARD_HOME", tempfile.mkdtemp(prefix="modelyard-bench-"))
    from modelyard import bundle as bundle_io
    from modelyard.config import compose_config
    from modelyard.data import load_dataset
    from modelyard.monitor.drift import DriftConfig, WindowData, run_checks
    from modelyard.monitor.observe import observe_images
    from modelyard.predictor import Predictor

    overrides = [f"task={args.task}", "train.progress_bar=false"]
    if args.task == "digits":
        overrides.append("train=fast")
    cfg = compose_config(overrides)
    if args.bundle is None:
        from modelyard.train.run import train

        started = time.perf_counter()
        result = train(cfg)
        print(f"trained {args.task} in {time.perf_counter() - started:.0f}s")
        bundle = bundle_io.read_bundle(result.bundle_path)
    else:
        bundle = bundle_io.read_bundle(args.bundle)
    dataset = load_dataset(cfg.data)
    images = np.concatenate([dataset.val.images, dataset.test.images])
    labels = np.concatenate([dataset.val.labels, dataset.test.labels])
    predictor = Predictor(bundle)
    profile = bundle.reference_profile
    config = DriftConfig()

    def observe(batch: np.ndarray) -> WindowData:
        prediction = predictor.predict_images(batch)
        return observe_images(
            profile, bundle.labels, batch, prediction.probabilities, prediction.embedding
        )

    def take(data: WindowData, rows: np.ndarray) -> WindowData:
        return WindowData(
            {k: v[rows] for k, v in data.summaries.items()},
            data.projection[rows],
            [data.labels[i] for i in rows],
            data.confidences[rows],
        )

    observed = {name: observe(transform(images)) for name, transform in TRANSFORMS.items()}
    rare = np.flatnonzero(labels < 3)  # digits 0-2, normally ~30% of traffic

    results = []
    for window in args.windows:
        scenarios: dict[str, tuple[WindowData, Callable[[np.random.Generator], np.ndarray]]] = {
            name: (data, lambda rng, w=window: rng.choice(len(images), w, replace=False))
            for name, data in observed.items()
        }
        scenarios["class mix: half digits 0-2"] = (
            observed["in-distribution (false alarms)"],
            lambda rng, w=window: np.concatenate(
                [
                    rng.choice(rare, w // 2, replace=w // 2 > len(rare)),
                    rng.choice(len(images), w - w // 2, replace=False),
                ]
            ),
        )
        for name, (data, pick) in scenarios.items():
            fired: Counter[str] = Counter()
            alarms = 0
            seconds = []
            for seed in range(args.trials):
                rows = pick(np.random.default_rng(seed))
                started = time.perf_counter()
                checks = run_checks(profile, take(data, rows), config)
                seconds.append(time.perf_counter() - started)
                alarms += any(c.drift for c in checks)
                fired.update(c.name for c in checks if c.drift)
            row = {
                "window": window,
                "scenario": name,
                "alarms": alarms,
                "trials": args.trials,
                "rate": alarms / args.trials,
                "checks_fired": dict(fired.most_common()),
                "median_check_seconds": float(np.median(seconds)),
            }
            results.append(row)
            print(
                f"window {window:4d}  {name:<32} {alarms:2d}/{args.trials}  "
                f"{row['median_check_seconds']:.2f}s  {dict(fired.most_common())}"
            )

    summary = {
        "task": args.task,
        "bundle": str(bundle.path),
        "held_out_images": len(images),
        "reference_samples": profile.get("samples"),
        "config": {
            "alpha": config.alpha,
            "min_psi": config.min_psi,
            "permutations": config.permutations,
        },
        "machine": f"{platform.processor() or platform.machine()}, nproc={os.cpu_count()}",
        "load_average": os.getloadavg(),
        "results": results,
    }
    print(f"load average {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
