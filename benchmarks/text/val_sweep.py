"""Per-class F1 on the validation AND test splits for one langid_nordic training run.

Used to choose changes on validation (not on test): train once with the given config
overrides, then score the bundle (through ONNX Runtime, as served) on both splits.

    taskset -c 0 .venv/bin/python benchmarks/text/val_sweep.py TAG --data-dir <ud> \
        [--jsonl out.jsonl] [override ...]

Prints one JSON line: {"tag", "overrides", "fit_seconds", "epochs", "val": {...}, "test": {...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def per_class_f1(truth: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for c, label in enumerate(labels):
        tp = int(((predicted == c) & (truth == c)).sum())
        wrong = int(((predicted == c) != (truth == c)).sum())  # false positives + negatives
        out[label] = round(2 * tp / max(2 * tp + wrong, 1), 4)
    out["macro"] = round(float(np.mean([out[label] for label in labels])), 4)
    out["accuracy"] = round(float((predicted == truth).mean()), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tag")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--jsonl", type=Path, help="append the result line here")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    os.environ.setdefault("MODELYARD_HOME", tempfile.mkdtemp(prefix="val-sweep-"))

    from modelyard import bundle
    from modelyard.config import compose_config
    from modelyard.data import load_text_dataset
    from modelyard.predictor import Predictor
    from modelyard.train.run import train

    cfg = compose_config(
        [
            "task=langid_nordic",
            f"data.path={args.data_dir}",
            "train.progress_bar=false",
            "tracking.register=false",
            *args.overrides,
        ]
    )
    result = train(cfg)
    dataset = load_text_dataset(cfg.data)
    predictor = Predictor(bundle.load(result.bundle_path))
    line: dict[str, object] = {
        "tag": args.tag,
        "overrides": args.overrides,
        "fit_seconds": round(result.fit_seconds, 1),
        "epochs": result.epochs,
    }
    for name in ("val", "test"):
        split = dataset.split(name)
        predicted = predictor.predict_texts(list(split.texts)).predicted
        line[name] = per_class_f1(split.labels, predicted, list(cfg.data.labels))
    emit(line, args.jsonl)


def emit(line: dict[str, object], jsonl: Path | None) -> None:
    """Print one result line, and append it to ``jsonl`` when given."""
    print(json.dumps(line), flush=True)
    if jsonl:
        with jsonl.open("a") as out:
            out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
