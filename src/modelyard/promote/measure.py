"""Figures the gate compares: scores on the evaluation split through ONNX Runtime,
per-class recall, latency per batch, size on disk and the recorded ONNX parity.
Image and text models are measured alike: raw examples in, each bundle's own
preprocessing applied (:mod:`modelyard.scoring`)."""

from __future__ import annotations

import time

import numpy as np

from modelyard.bundle import INPUT_NAME, Bundle
from modelyard.config.schema import PromoteConfig
from modelyard.predictor import Predictor
from modelyard.promote.gate import ModelFigures
from modelyard.scoring import model_inputs, predict_examples


def latency_ms(predictor: Predictor, examples: np.ndarray, rows: int, repeats: int) -> float:
    """Median wall time of one ONNX Runtime call on ``rows`` raw examples, preprocessed
    with the predictor's bundle (preprocessing itself is not timed).

    Examples are tiled when the split is smaller than a batch; three untimed calls
    warm the session first (the first call allocates)."""
    tiled = np.resize(np.arange(len(examples)), rows)
    batch = model_inputs(predictor.bundle, examples[tiled])
    for _ in range(3):
        predictor.session.run(["probabilities"], {INPUT_NAME: batch})
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predictor.session.run(["probabilities"], {INPUT_NAME: batch})
        times.append((time.perf_counter() - started) * 1000.0)
    return float(np.median(times))


def _parity(model: Bundle) -> float | None:
    return model.fields.onnx.max_abs_diff if model.fields.onnx else None


def _macs(model: Bundle) -> float | None:
    return model.fields.cost.macs_per_example if model.fields.cost else None


def measure(
    model: Bundle,
    examples: np.ndarray,
    labels: np.ndarray,
    cfg: PromoteConfig,
    reference_labels: tuple[str, ...] | None = None,
) -> ModelFigures:
    """Evaluate ``model`` on raw ``examples`` (uint8 images or texts) and time it.

    A model whose labels differ from ``reference_labels`` is not scored: its
    figures say so (``labels_match=False``) and the gate refuses the comparison.
    """
    if reference_labels is not None and model.labels != reference_labels:
        nan = float("nan")
        return ModelFigures(model.version or "local", nan, nan, nan, {}, nan, nan, None, False)
    from modelyard.evaluate import evaluate_probabilities  # scikit-learn: after the checks

    predictor = Predictor(model)
    probabilities = predict_examples(predictor, examples).probabilities
    report = evaluate_probabilities(labels, probabilities, model.labels, "gate")
    scores = {"accuracy": report.accuracy, "macro_f1": report.macro_f1}
    return ModelFigures(
        version=model.version or "local",
        score=scores[cfg.metric],
        accuracy=report.accuracy,
        macro_f1=report.macro_f1,
        recalls={row.label: row.recall for row in report.per_class},
        latency_ms=latency_ms(predictor, examples, cfg.latency_batch_size, cfg.latency_repeats),
        size_mb=model.onnx_path.stat().st_size / 1e6,
        parity_max_abs_diff=_parity(model),
        labels_match=reference_labels is None or model.labels == reference_labels,
        macs=_macs(model),
    )
