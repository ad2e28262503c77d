"""Shared by the peer apps: one ONNX Runtime session, the v2 JSON request/response.

Every peer opens the session the way modelyard does (CPU provider, ORT_ENABLE_ALL,
intra-op threads left to ONNX Runtime unless PEER_INTRA_OP_THREADS is set) and
answers the same Open Inference Protocol (v2) JSON body the load tool sends:
``{"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": [...]}]}``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

MODEL_NAME = "mnist"
INPUT_NAME = "input"
ONNX_PATH = os.environ.get("PEER_ONNX", "model.onnx")


def make_session():  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    threads = int(os.environ.get("PEER_INTRA_OP_THREADS", "0"))
    if threads:
        options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(ONNX_PATH, options, providers=["CPUExecutionProvider"])


def decode_v2(document: dict[str, Any]) -> np.ndarray:
    spec = document["inputs"][0]
    return np.asarray(spec["data"], dtype=np.float32).reshape(spec["shape"])


def encode_v2(names: list[str], arrays: list[np.ndarray]) -> dict[str, Any]:
    return {
        "model_name": MODEL_NAME,
        "outputs": [
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": "FP32",
                "data": array.ravel().tolist(),
            }
            for name, array in zip(names, arrays, strict=False)
        ],
    }


def dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
