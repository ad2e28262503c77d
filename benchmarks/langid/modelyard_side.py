"""modelyard's side of the benchmark: train a bundle (in a subprocess) and predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent


def train_modelyard(
    data_dir: Path,
    exclude: Sequence[str],
    home: Path,
    overrides: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> dict:
    """Train in a subprocess (torch stays out of this one) with its own MODELYARD_HOME;
    ``overrides`` are `modelyard train` key=value settings (e.g. another split seed)."""
    home.mkdir(parents=True, exist_ok=True)
    output = home / "train_result.json"
    command = [
        sys.executable,
        str(HERE / "train_modelyard.py"),
        f"--data-dir={data_dir}",
        f"--output={output}",
    ]
    if exclude:
        command += ["--exclude", *exclude]
    if overrides:
        command += ["--override", *overrides]
    command += list(extra_args)
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "MODELYARD_HOME": str(home)})
    result: dict = json.loads(output.read_text())
    result["wall_seconds"] = time.perf_counter() - started
    return result


def find_fingerprint(manifest: object) -> str | None:
    """The dataset fingerprint recorded anywhere in a bundle manifest."""
    if isinstance(manifest, dict):
        for key, value in manifest.items():
            if "fingerprint" in key and isinstance(value, str):
                return value
            found = find_fingerprint(value)
            if found:
                return found
    return None


class Modelyard:
    """modelyard's bundle through its own Predictor (ONNX Runtime, one thread)."""

    def __init__(self, bundle_ref: str) -> None:
        from modelyard.bundle import load
        from modelyard.predictor import Predictor

        self.bundle = load(bundle_ref)
        self.predictor = Predictor(self.bundle, intra_op_threads=1)

    def predict(self, texts: Sequence[str]) -> list[str]:
        return list(self.predictor.predict_texts(list(texts)).predicted_labels)

    def calibration(self, texts: Sequence[str], truth: Sequence[str]) -> dict:
        """ECE of the served probabilities, and what a ``text.min_confidence``
        threshold would do: the share answered and the accuracy of those answers."""
        import numpy as np

        from modelyard.calibration import expected_calibration_error

        prediction = self.predictor.predict_texts(list(texts))
        index = {label: i for i, label in enumerate(self.bundle.labels)}
        labels = np.array([index[t] for t in truth])
        correct = prediction.predicted == labels
        confidence = prediction.confidence
        thresholds = {}
        for threshold in (0.5, 0.7, 0.9):
            answered = confidence >= threshold
            thresholds[str(threshold)] = {
                "answered": float(answered.mean()),
                "accuracy_answered": float(correct[answered].mean()) if answered.any() else None,
            }
        return {
            "ece": expected_calibration_error(prediction.probabilities, labels),
            "mean_confidence": float(confidence.mean()),
            "accuracy": float(correct.mean()),
            "min_confidence": thresholds,
            "temperature": (self.bundle.manifest.get("calibration") or {}).get(
                "calibration_temperature"
            ),
        }
