"""In-process ONNX Runtime ceiling: images/s from session.run on [B,1,28,28].

Same session settings as modelyard serve (CPU provider, ORT_ENABLE_ALL, intra-op
threads left to ONNX Runtime). Prints JSON.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import onnxruntime as ort


def measure(path: str, batch: int, seconds: float = 5.0) -> dict[str, float]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((batch, 1, 28, 28), dtype=np.float32)
    for _ in range(20):
        session.run(None, {"input": x})
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        session.run(None, {"input": x})
        runs += 1
    return {
        "batch": batch,
        "runs": runs,
        "seconds": elapsed,
        "images_per_s": runs * batch / elapsed,
        "ms_per_run": 1000 * elapsed / runs,
    }


if __name__ == "__main__":
    path = sys.argv[1]
    batches = [int(b) for b in (sys.argv[2] if len(sys.argv) > 2 else "1,32").split(",")]
    print(json.dumps([measure(path, b) for b in batches]))
