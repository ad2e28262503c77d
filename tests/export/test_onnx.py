from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from modelyard.config import ModelConfig
from modelyard.errors import ExportError
from modelyard.export.onnx import check_parity, export_onnx
from modelyard.models import build_model


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(channels=[4, 8], hidden=16), (1, 12, 12), 3).eval()


def test_dynamic_batch_and_three_outputs(tmp_path: Path) -> None:
    inputs = np.random.default_rng(0).normal(size=(9, 1, 12, 12)).astype(np.float32)
    path = export_onnx(_model(0), inputs, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path))
    assert [o.name for o in session.get_outputs()] == ["logits", "probabilities", "embedding"]
    for n in (1, 9):
        logits, probs, embedding = session.run(None, {"input": inputs[:n]})
        assert logits.shape == (n, 3) and embedding.shape == (n, 16)
        assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    report = check_parity(_model(0), path, inputs, atol=1e-4)
    assert report.max_abs_diff_probabilities < 1e-5 and report.argmax_agreement == 1.0


def test_parity_failure_stops_the_export(tmp_path: Path) -> None:
    inputs = np.random.default_rng(0).normal(size=(9, 1, 12, 12)).astype(np.float32)
    path = export_onnx(_model(0), inputs, tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="ONNX parity failed"):
        check_parity(_model(1), path, inputs, atol=1e-4)  # a different model: must disagree
