"""The cost counter against hand-computed counts on graphs built with onnx.helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelyard.errors import ExportError
from modelyard.export.cost import cost_report, count_macs, count_parameters, mlflow_figures


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    rng = np.random.default_rng(0)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def conv_gemm_model() -> onnx.ModelProto:
    """input N x 3 x 10 x 10 -> Conv 8 filters 3x3, stride 1, pad 1 -> Flatten -> Gemm
    (800 -> 5, weight stored transposed as 5 x 800 with transB=1)."""
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 10, 10])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])],
        [_weight("w1", 8, 3, 3, 3), _weight("b1", 8), _weight("w2", 5, 800), _weight("b2", 5)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_conv_and_gemm_are_counted_by_hand() -> None:
    count = count_macs(conv_gemm_model(), [32, 3, 10, 10])
    conv = (8 * 10 * 10) * (3 * 3 * 3)  # output elements x (C_in x kH x kW) = 21,600
    gemm = 5 * 800  # = 4,000
    assert count.by_op == {"Conv": conv, "Gemm": gemm}
    assert count.macs == 25_600 and count.input_shape == [1, 3, 10, 10]
    assert count_parameters(conv_gemm_model()) == 8 * 27 + 8 + 5 * 800 + 5


def test_strided_grouped_conv_and_matmul() -> None:
    nodes = [
        # depthwise: 4 groups of one channel, stride 2: out 4 x 4 x 4, one 3x3 each
        helper.make_node("Conv", ["input", "w"], ["c"], group=4, strides=[2, 2], pads=[1] * 4),
        helper.make_node("Reshape", ["c", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "m"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "grouped",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [
            _weight("w", 4, 1, 3, 3),
            numpy_helper.from_array(np.array([-1, 64], dtype=np.int64), "shape"),
            _weight("m", 64, 7),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    count = count_macs(model, [1, 4, 8, 8])
    assert count.by_op == {"Conv": 64 * 9, "MatMul": 7 * 64}
    assert count_parameters(model) == 36 + 448  # the int64 shape is not a weight


def embedding_bag_model() -> onnx.ModelProto:
    """The text model's shape: Gather ids from a 100 x 16 table, ReduceSum over the
    n-grams, then a Gemm to 3 classes."""
    nodes = [
        helper.make_node("Gather", ["table", "input"], ["g"]),
        helper.make_node("ReduceSum", ["g", "axes"], ["s"], keepdims=0),
        helper.make_node("Gemm", ["s", "w"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "bag",
        [helper.make_tensor_value_info("input", TensorProto.INT64, ["batch", "ngrams"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [
            _weight("table", 100, 16),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
            _weight("w", 3, 16),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_an_embedding_bag_counts_its_adds_and_its_lookups() -> None:
    count = count_macs(embedding_bag_model(), [8, 12])  # 12 n-grams per text
    assert count.by_op == {"ReduceSum": 12 * 16, "Gemm": 3 * 16}
    assert count.gathered_values == 12 * 16 and count.input_shape == [1, 12]


def test_an_unknown_shape_is_an_error_not_a_zero() -> None:
    nodes = [helper.make_node("MatMul", ["input", "m"], ["out"])]
    graph = helper.make_graph(
        nodes,
        "unknown",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [],  # 'm' is neither an initializer nor produced: the product's shape is unknown
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ExportError, match="cannot count MatMul: the shape of 'out' is unknown"):
        count_macs(model, [1, 4])


def test_cost_report_times_the_graph_on_one_thread(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save(conv_gemm_model(), str(path))
    inputs = np.random.default_rng(1).random((5, 3, 10, 10), dtype=np.float32)
    report = cost_report(path, inputs, repeats=3)
    assert report.macs_per_example == 25_600 and report.size_bytes == path.stat().st_size
    assert report.latency_ms_batch1 > 0 and report.latency_ms_per_example_batch32 > 0
    assert report.machine["onnxruntime"] and isinstance(report.machine["cpu_flags"], list)
    metrics, params = mlflow_figures(report.to_dict())
    assert metrics["cost_macs_per_example"] == 25_600.0 and params["cost_threads"] == "1"
    with pytest.raises(ExportError, match="at least one"):
        cost_report(path, inputs[:0])


def test_latency_is_the_calling_threads_cpu_time() -> None:
    """ONNX Runtime computes on the calling thread with one intra-op thread, so its CPU
    time is the compute; time spent waiting (here: sleeping) is not counted."""
    import time

    from modelyard.export.cost import _median_ms

    class Waiting:
        def run(self, *args: object) -> None:
            time.sleep(0.005)

    assert _median_ms(Waiting(), np.zeros((1, 3)), repeats=5) < 1.0
