"""Temperature scaling folded into the classifier, before export (``train.calibrate``).

Dividing logits by ``T`` equals dividing the last linear layer's weight and bias by
``T``, so the exported graph, the server and offline prediction all give calibrated
probabilities with no extra operation at inference and no change of argmax.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from modelyard.calibration import expected_calibration_error, fit_temperature, softmax
from modelyard.errors import ConfigError
from modelyard.modality.base import Modality


def logits_of(model: nn.Module, kind: Modality[Any], examples: Any, spec: Any) -> np.ndarray:
    """The model's logits on ``examples`` (eval mode, chunks of 512)."""
    chunks = []
    with torch.no_grad():
        for start in range(0, len(examples), 512):
            inputs = kind.model_inputs(examples[start : start + 512], spec)
            chunks.append(model(torch.from_numpy(np.asarray(inputs))).float().numpy())
    return np.concatenate(chunks)


def scale_classifier(model: nn.Module, temperature: float) -> None:
    """Divide ``model.classifier``'s weight and bias by ``temperature``, in place."""
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, nn.Linear):
        raise ConfigError(
            "train.calibrate needs a model whose classifier is one linear layer; "
            "set train.calibrate=false"
        )
    with torch.no_grad():
        classifier.weight.div_(temperature)
        if classifier.bias is not None:
            classifier.bias.div_(temperature)


def calibrate_classifier(
    model: nn.Module, kind: Modality[Any], dataset: Any, spec: Any
) -> dict[str, float]:
    """Fit ``T`` on the validation split, scale ``model.classifier`` by ``1/T`` in place,
    and return the temperature with the validation and test ECE before and after."""
    if not isinstance(getattr(model, "classifier", None), nn.Linear):
        scale_classifier(model, 1.0)  # raises the error that names the setting
    val = kind.split_examples(dataset, "val")
    test = kind.split_examples(dataset, "test")
    val_logits = logits_of(model, kind, val.examples, spec)
    test_logits = logits_of(model, kind, test.examples, spec)
    val_labels = np.asarray(val.labels, dtype=np.int64)
    test_labels = np.asarray(test.labels, dtype=np.int64)
    temperature = fit_temperature(val_logits, val_labels)
    scale_classifier(model, temperature)
    return {
        "calibration_temperature": temperature,
        "val_ece_uncalibrated": expected_calibration_error(softmax(val_logits), val_labels),
        "val_ece": expected_calibration_error(softmax(val_logits, temperature), val_labels),
        "test_ece_uncalibrated": expected_calibration_error(softmax(test_logits), test_labels),
        "test_ece": expected_calibration_error(softmax(test_logits, temperature), test_labels),
    }
