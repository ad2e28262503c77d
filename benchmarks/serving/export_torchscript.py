"""Rebuild the torch model behind a bundle's model.onnx and save it as TorchScript.

Run with the project venv: ``.venv/bin/python benchmarks/serving/export_torchscript.py RUN_DIR OUT``
where RUN_DIR is ``$MODELYARD_HOME/runs/<run_id>`` (config.yaml + checkpoints/best.ckpt).
The traced module returns (logits, probabilities, embedding) like the ONNX graph, and its
outputs are checked against model.onnx when that path is given as a third argument.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from modelyard.config import from_yaml
from modelyard.export.onnx import _ExportHead
from modelyard.models import build_model


def main(run_dir: Path, out: Path, onnx_path: Path | None) -> None:
    cfg = from_yaml((run_dir / "config.yaml").read_text())
    ckpt = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    state = ckpt.get("state_dict", ckpt)
    model = build_model(cfg.model, (1, 28, 28), 10)
    prefixes = sorted({k.split(".", 1)[0] for k in state})
    for prefix in ("model.", "net.", ""):
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if sub and not model.load_state_dict(sub, strict=False).missing_keys:
            model.load_state_dict(sub)
            break
    else:
        raise SystemExit(f"cannot map checkpoint keys (prefixes {prefixes}) onto the model")
    head = _ExportHead(model.float().eval())
    example = torch.randn(4, 1, 28, 28)
    with torch.inference_mode():
        traced = torch.jit.trace(head, example)
    traced.save(str(out))
    if onnx_path is not None:
        import onnxruntime as ort

        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        onnx_probs = session.run(["probabilities"], {"input": example.numpy()})[0]
        with torch.inference_mode():
            torch_probs = torch.jit.load(str(out))(example)[1].numpy()
        diff = float(np.abs(onnx_probs - torch_probs).max())
        print(f"torchscript vs onnx max |probabilities diff| = {diff:.2e}")
        if diff > 1e-3:
            raise SystemExit("TorchScript model does not match model.onnx")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
