"""Peer definitions: what each peer's venv needs (pip requirements, installed in order)."""

from __future__ import annotations

PEERS_ROOT = "/tmp/peers"
PYTHON = "python3.11"

# Each entry: list of pip install steps (each a list of requirement specs). torch goes FIRST
# where needed so pip uses the local torch==2.13.0 CPU wheel instead of downloading CUDA builds.
REQUIREMENTS: dict[str, list[list[str]]] = {
    "mlserver": [["mlserver==1.7.*", "uvloop<0.22", "onnxruntime", "numpy"]],
    "bentoml": [["bentoml", "onnxruntime", "numpy"]],
    "litserve": [["torch==2.13.0"], ["litserve", "onnxruntime", "numpy"]],
    "rayserve": [["ray[serve]", "onnxruntime", "numpy"]],
    "mlflow": [["mlflow", "onnx", "onnxruntime", "numpy"]],
    "flask_torch": [["torch==2.13.0"], ["flask", "numpy"]],
    "starlette_ort": [["starlette", "uvicorn[standard]", "onnxruntime", "numpy"]],
}
