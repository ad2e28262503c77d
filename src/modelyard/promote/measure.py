"""Figures the gate compares: scores on the evaluation split through ONNX Runtime,
per-class recall, latency per batch, size on disk and the recorded ONNX parity."""

from __future__ import annotations

import time

import numpy as np

from modelyard.bundle import Bundle
from modelyard.config.schema import PromoteConfig
from modelyard.evaluate import evaluate_probabilities
from modelyard.features.image import to_model_input
from modelyard.predictor import INPUT_NAME, Predictor
from modelyard.promote.gate import ModelFigures


def latency_ms(predictor: Predictor, inputs: np.ndarray, rows: int, repeats: int) -> float:
    """Median wall time of one ONNX Runtime call on ``rows`` preprocessed inputs.

    Inputs are tiled when the split is smaller than a batch; three untimed calls
    warm the session first (the first call allocates)."""
    batch = np.resize(inputs, (rows, *inputs.shape[1:])).astype(np.float32)
    for _ in range(3):
        predictor.session.run(["probabilities"], {INPUT_NAME: batch})
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predictor.session.run(["probabilities"], {INPUT_NAME: batch})
        times.append((time.perf_counter() - started) * 1000.0)
    return float(np.median(times))


def _parity(model: Bundle) -> float | None:
    parity = (model.manifest.get("onnx") or {}).get("parity") or {}
    value = parity.get("max_abs_diff_probabilities")
    return float(value) if value is not None else None


def measure(
    model: Bundle,
    images: np.ndarray,
    labels: np.ndarray,
    cfg: PromoteConfig,
    reference_labels: tuple[str, ...] | None = None,
) -> ModelFigures:
    """Evaluate ``model`` on uint8 ``images`` (already at its input size) and time it.

    A model whose labels differ from ``reference_labels`` is not scored: its
    figures say so (``labels_match=False``) and the gate refuses the comparison.
    """
    if reference_labels is not None and model.labels != reference_labels:
        nan = float("nan")
        return ModelFigures(model.version or "local", nan, nan, nan, {}, nan, nan, None, False)
    predictor = Predictor(model)
    inputs = to_model_input(images, model.preprocessing)
    probabilities = predictor.predict_inputs(inputs).probabilities
    report = evaluate_probabilities(labels, probabilities, model.labels, "gate")
    scores = {"accuracy": report.accuracy, "macro_f1": report.macro_f1}
    return ModelFigures(
        version=model.version or "local",
        score=scores[cfg.metric],
        accuracy=report.accuracy,
        macro_f1=report.macro_f1,
        recalls={row.label: row.recall for row in report.per_class},
        latency_ms=latency_ms(predictor, inputs, cfg.latency_batch_size, cfg.latency_repeats),
        size_mb=model.onnx_path.stat().st_size / 1e6,
        parity_max_abs_diff=_parity(model),
        labels_match=reference_labels is None or model.labels == reference_labels,
    )
