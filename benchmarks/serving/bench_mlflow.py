"""`modelyard bench` for `mlflow models serve`, whose only inference route is /invocations.

Same CLI, same closed-loop engine and report; only two things differ: the path
(/invocations instead of /v2/models/{name}/infer) and the body, which carries the
same kind of tensor (FP32 [1, 1, 28, 28], random normal, seed 0) in MLflow's
tensor-input form ``{"inputs": {"input": [[[[...]]]]}}``.

    .venv/bin/python benchmarks/serving/bench_mlflow.py URL --model mnist -c 1,8,32 --json
"""

from __future__ import annotations

import json

import numpy as np

import modelyard.bench.loadgen as loadgen
import modelyard.bench.payloads as payloads
import modelyard.bench.report as report
from modelyard.cli import app


def _path(protocol: str, model: str) -> str:
    return "/invocations"


def _payload(url: str, model: str, protocol: str, **_: object) -> payloads.Payload:
    x = np.random.default_rng(0).standard_normal((1, 1, 28, 28), dtype=np.float32)
    body = json.dumps({"inputs": {"input": x.tolist()}}, separators=(",", ":")).encode()
    return payloads.Payload(
        body,
        {"Content-Type": "application/json"},
        f"MLflow JSON FP32 [1, 1, 28, 28] to /invocations, {len(body) / 1024:.1f} KB",
    )


loadgen.infer_path = _path  # type: ignore[assignment]
payloads.infer_path = _path  # type: ignore[assignment]
report.build_payload = _payload  # type: ignore[assignment]

if __name__ == "__main__":
    import sys

    app(["bench", *sys.argv[1:]])
