"""Export a trained classifier to ONNX and prove the graph reproduces it.

The graph has one input ``input`` (float32, N x C x H x W, dynamic N) and three
outputs: ``logits``, ``probabilities`` (softmax) and ``embedding`` (the penultimate
activations, which drift monitoring projects and compares).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modelyard.bundle import INPUT_NAME
from modelyard.errors import ExportError

OUTPUT_NAMES = ("logits", "probabilities", "embedding")


class _ExportHead(nn.Module):
    """Wraps a model with ``embed`` + ``classifier`` so the graph returns all outputs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        embedding = self.model.embed(x)  # type: ignore[operator]  # nn.Module attributes are typed Tensor | Module
        logits = self.model.classifier(embedding)  # type: ignore[operator]  # as above
        return logits, torch.softmax(logits, dim=1), embedding


@dataclass(frozen=True)
class ParityReport:
    """How closely ONNX Runtime reproduces torch on real samples."""

    samples: int
    atol: float
    max_abs_diff_probabilities: float
    max_abs_diff_logits: float
    argmax_agreement: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_onnx(
    model: nn.Module,
    example: np.ndarray,
    path: Path,
    opset: int = 17,
    input_axes: dict[int, str] | None = None,
) -> Path:
    """Write ``model`` (in eval mode) as ONNX with a dynamic batch dimension.

    ``input_axes`` names the input's dynamic axes (default: only the batch); text
    models add their variable n-gram axis (``{0: "batch", 1: "ngrams"}``).
    """
    head = _ExportHead(model).eval()
    dummy = torch.from_numpy(example[:2])
    dynamic = {
        INPUT_NAME: input_axes or {0: "batch"},
        **{name: {0: "batch"} for name in OUTPUT_NAMES},
    }
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: fast, and exact for the conv/linear layers we use.
        torch.onnx.export(
            head,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
        )
    return path


def check_parity(
    model: nn.Module, onnx_path: Path, inputs: np.ndarray, atol: float
) -> ParityReport:
    """Run the same real inputs through torch and ONNX Runtime; fail if they disagree.

    Raises :class:`ExportError` when any probability differs by more than ``atol``.
    """
    import onnxruntime as ort

    head = _ExportHead(model).eval()
    with torch.no_grad():
        torch_logits, torch_probs, _ = (t.numpy() for t in head(torch.from_numpy(inputs)))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_logits, ort_probs, _ = session.run(list(OUTPUT_NAMES), {INPUT_NAME: inputs})
    report = ParityReport(
        samples=int(inputs.shape[0]),
        atol=atol,
        max_abs_diff_probabilities=float(np.abs(ort_probs - torch_probs).max()),
        max_abs_diff_logits=float(np.abs(ort_logits - torch_logits).max()),
        argmax_agreement=float((ort_probs.argmax(1) == torch_probs.argmax(1)).mean()),
    )
    if report.max_abs_diff_probabilities > atol:
        raise ExportError(
            f"ONNX parity failed: probabilities differ by up to "
            f"{report.max_abs_diff_probabilities:.2e} on {report.samples} real samples "
            f"(allowed {atol:.0e}); raise export.parity_atol only if you accept that"
        )
    return report
