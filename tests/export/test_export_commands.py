"""``modelyard export triton|onnx|quantize`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.helpers import run_cli

from modelyard import bundle as bundle_io

MODEL = "digits-cnn@candidate"


@pytest.fixture(autouse=True)
def _registered_model(trained, use_session_home: Path) -> None:  # type: ignore[no-untyped-def]
    """Every command here reads the session's registered digits model."""


def test_triton_writes_a_model_repository(tmp_path: Path) -> None:
    out = tmp_path / "model_repository"
    args = ("export", "triton", MODEL, "--out", str(out), "--max-batch-size", "32")
    result = run_cli(*args, "--instances", "2", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    folder = out / "digits-cnn"
    assert summary["folder"] == str(folder) and summary["version"] is not None
    for name in ("config.pbtxt", "labels.txt", "1/model.onnx", "bundle.json"):
        assert (folder / name).is_file()
    config = (folder / "config.pbtxt").read_text()
    assert "max_batch_size: 32" in config and "count: 2" in config

    again = run_cli(*args)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [again.stderr.strip()]
    assert "--overwrite" in again.stderr
    assert run_cli(*args, "--overwrite").returncode == 0


def test_onnx_copies_the_graph_with_a_sidecar(tmp_path: Path) -> None:
    result = run_cli("export", "onnx", MODEL, "--out", str(tmp_path / "digits.onnx"))
    assert result.returncode == 0, result.stderr
    source = bundle_io.load(MODEL)
    assert (tmp_path / "digits.onnx").read_bytes() == source.onnx_path.read_bytes()
    assert json.loads((tmp_path / "digits.json").read_text())["labels"] == list(source.labels)


def test_quantize_prints_the_comparison_and_records_it(tmp_path: Path) -> None:
    result = run_cli("export", "quantize", MODEL, "--out", str(tmp_path / "int8"))
    assert result.returncode == 0, result.stderr
    for words in ("float32", "int8", "drop", "argmax agreement", "model size", "latency"):
        assert words in result.stdout
    quantized = bundle_io.load(tmp_path / "int8")
    comparison = quantized.manifest["quantization"]["comparison"]
    assert quantized.metrics == {"test_accuracy": comparison["accuracy_int8"]}
    assert comparison["accuracy_drop"] < 0.05
    assert f"{comparison['accuracy_int8']:.4f}" in result.stdout
    # Its own cost report, timed on the INT8 graph; the float32 one kept beside it.
    cost = quantized.manifest["cost"]
    assert cost["size_bytes"] == quantized.onnx_path.stat().st_size
    source = quantized.manifest["quantization"]["source_cost"]
    assert cost["macs_per_example"] == source["macs_per_example"] > 0
    assert cost["size_bytes"] < source["size_bytes"]


def test_static_quantize_calibrates_a_per_channel_qdq_graph(tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    out = tmp_path / "static"
    args = ("export", "quantize", MODEL, "--static", "--calibration-examples", "64")
    result = run_cli(*args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "static quantization (QDQ, per-channel" in result.stdout
    assert "measured on " in result.stdout
    q = bundle_io.load(out).manifest["quantization"]
    data = q["comparison"]
    assert (q["method"], q["format"], q["per_channel"]) == ("static", "QDQ", True)
    assert q["calibration"] == {"method": "minmax", "split": "train", "examples": 64}
    assert data["accuracy_drop"] < 0.05 and data["argmax_agreement"] > 0.9
    assert isinstance(data["cpu_flags"], list) and data["cpu"]  # named in the report
    # The verdict is there, and printed, exactly when INT8 lost at batch 32 here.
    assert (q["speed_verdict"] is None) == (data["latency_int8_ms"] < data["latency_fp32_ms"])
    assert q["speed_verdict"] is None or q["speed_verdict"] in result.stdout

    graph = onnx.load(str(out / "model.onnx")).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Softmax"} <= ops
    weights = {init.name: init for init in graph.initializer}
    conv_scales = [
        numpy_helper.to_array(weights[node.input[1]])
        for node in graph.node
        if node.op_type == "DequantizeLinear"
        and weights.get(node.input[0]) is not None
        and len(weights[node.input[0]].dims) == 4  # a conv weight
    ]
    assert conv_scales and all(scale.size > 1 for scale in conv_scales)  # per channel
    # 7-bit weights: on an AVX2-only CPU a pair of uint8 x int8 products sums in int16
    # and would saturate at full range (quantize.REDUCE_RANGE)
    int8_weights = [
        numpy_helper.to_array(init)
        for init in graph.initializer
        if init.data_type == onnx.TensorProto.INT8 and len(init.dims) > 1
    ]
    assert int8_weights and max(int(np.abs(w.astype(np.int16)).max()) for w in int8_weights) <= 64
    assert q["weight_bits"] == 7

    refused = run_cli(*args, "--matmul-only", "--out", str(tmp_path / "no"))
    assert refused.returncode == 2 and "drop --matmul-only" in refused.stderr


@pytest.mark.parametrize("command", ["triton", "onnx", "quantize"])
def test_unknown_model_is_one_line_error(command: str, tmp_path: Path) -> None:
    result = run_cli(
        "export", command, "no-such-model@candidate", "--out", str(tmp_path / "x.onnx")
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "no-such-model" in lines[0]


# Runs a command through Typer in a fresh interpreter and reports what it imported.
_PROBE = (
    "import json, sys\n"
    "from typer.testing import CliRunner\n"
    "from modelyard.cli import app\n"
    "result = CliRunner().invoke(app, sys.argv[1:])\n"
    "heavy = sorted(m for m in ('torch', 'lightning', 'mlflow') if m in sys.modules)\n"
    "print(json.dumps({'exit': result.exit_code, 'output': result.output, 'heavy': heavy}))\n"
)


def test_onnx_copy_imports_neither_torch_nor_mlflow(tmp_path: Path) -> None:
    # A copy of a file should take about a second; MLflow's client alone costs three
    # (issue 20, item 12). Registry URIs on the embedded store resolve without it.
    for n, model in enumerate([MODEL, str(bundle_io.load(MODEL).path)]):
        out = tmp_path / f"copy{n}.onnx"
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, "export", "onnx", model, "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["exit"] == 0, report["output"]
        assert report["heavy"] == [] and out.is_file()
