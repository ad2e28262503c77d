"""The stages of ``dvc.yaml``: prepare, train, evaluate (export is ``modelyard export``).

Each stage reads ``params.yaml`` and writes its outputs under ``pipeline/``, so DVC
can hash what each stage depends on and reruns only the stages whose inputs
changed. ``params.yaml`` holds the same keys as the config (``task`` picks the
task's config group; the ``data``, ``model``, ``train`` and ``export`` sections
override fields of it) and they reach the config as Hydra overrides, so a bad
key fails exactly as on the command line.

    python -m modelyard.pipeline prepare    # -> pipeline/data/splits.npz
    python -m modelyard.pipeline train      # -> pipeline/model/bundle, train.json
    python -m modelyard.pipeline evaluate   # -> pipeline/metrics/test.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modelyard.config import Config, compose_config
from modelyard.data.dataset import ArraySplit, Dataset
from modelyard.errors import ConfigError, ModelyardError

CONFIG_SECTIONS = ("data", "model", "train", "export")
SPLITS = ("train", "val", "test")
PARAMS = Path("params.yaml")
OUT = Path("pipeline")
SPLITS_FILE = OUT / "data" / "splits.npz"
BUNDLE = OUT / "model" / "bundle"
TRAIN_SUMMARY = OUT / "model" / "train.json"
TEST_METRICS = OUT / "metrics" / "test.json"


def overrides_from_params(params: dict[str, Any]) -> list[str]:
    """Hydra overrides for ``params.yaml``: ``task=...`` first, then every field."""
    if "task" not in params:
        raise ConfigError(f"{PARAMS} needs a `task:` (e.g. task: mnist5k)")
    overrides = [f"task={params['task']}"]
    for section in CONFIG_SECTIONS:
        values = params.get(section) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{PARAMS}: `{section}` must be a mapping of config fields")
        for key, value in values.items():
            overrides.append(f"{section}.{key}={json.dumps(value, separators=(',', ':'))}")
    return overrides


def load_config(params_file: Path = PARAMS) -> Config:
    return compose_config(overrides_from_params(yaml.safe_load(params_file.read_text()) or {}))


def save_dataset(dataset: Dataset, path: Path) -> None:
    """The splits as trained on, plus what identifies them (name, uri, fingerprint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {}
    for name in SPLITS:
        split = dataset.split(name)
        arrays[f"{name}_images"] = split.images
        arrays[f"{name}_labels"] = split.labels
    meta = {
        "name": dataset.name,
        "uri": dataset.uri,
        "class_names": list(dataset.class_names),
        "fingerprint": dataset.fingerprint,
    }
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


def read_dataset(path: Path) -> Dataset:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        splits = {
            name: ArraySplit(data[f"{name}_images"], data[f"{name}_labels"]) for name in SPLITS
        }
    return Dataset(
        name=meta["name"],
        uri=meta["uri"],
        class_names=tuple(meta["class_names"]),
        fingerprint=meta["fingerprint"],
        **splits,
    )


def prepare() -> dict[str, Any]:
    """Load the configured source, split it and write the splits."""
    from modelyard.data import load_dataset

    dataset = load_dataset(load_config().data)
    save_dataset(dataset, SPLITS_FILE)
    return {
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint,
        **{name: len(dataset.split(name)) for name in SPLITS},
    }


def train() -> dict[str, Any]:
    """Train on the prepared splits (tracked and registered as usual); copy the bundle."""
    from modelyard.train.run import train as run_training

    result = run_training(load_config(), dataset=read_dataset(SPLITS_FILE))
    if result.rank != 0:
        return {}
    if BUNDLE.exists():
        shutil.rmtree(BUNDLE)
    shutil.copytree(result.bundle_path, BUNDLE)
    summary = {
        "run_id": result.run_id,
        "model_name": result.model_name,
        "model_version": result.model_version,
        "tracking_uri": result.tracking_uri,
        "epochs": result.epochs,
    }
    TRAIN_SUMMARY.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def evaluate() -> dict[str, Any]:
    """Score the bundle through ONNX Runtime on the prepared test split."""
    from modelyard import bundle as bundle_io
    from modelyard.evaluate import evaluate_probabilities
    from modelyard.predictor import Predictor

    model = bundle_io.load(str(BUNDLE))
    test = read_dataset(SPLITS_FILE).test
    probabilities = Predictor(model).predict_images(test.images).probabilities
    report = evaluate_probabilities(test.labels, probabilities, model.labels, "test")
    metrics = {"accuracy": report.accuracy, "macro_f1": report.macro_f1, "n": report.n}
    TEST_METRICS.parent.mkdir(parents=True, exist_ok=True)
    TEST_METRICS.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


STAGES = {"prepare": prepare, "train": train, "evaluate": evaluate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelyard.pipeline", description=__doc__)
    parser.add_argument("stage", choices=sorted(STAGES))
    stage = parser.parse_args(argv).stage
    try:
        summary = STAGES[stage]()
    except ModelyardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if summary:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
