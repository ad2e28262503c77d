"""What a model costs to run: parameters, multiply-adds per example, size, latency.

Computed at export time from the ONNX graph itself (not from the torch module), so
the figures describe exactly what is served, and a quantized or pruned graph is
counted the same way. This module imports ``onnx`` and ONNX Runtime; the serving
path never imports it (it only reads the ``cost`` key bundle.json records).

Counting rules (per example: the batch axis is fixed to 1 before shape inference):

- ``Conv``: output elements x input channels per group x kernel elements.
- ``Gemm`` / ``MatMul``: output elements x the shared (inner) dimension.
- INT8 forms (``ConvInteger``, ``QLinearConv``, ``MatMulInteger``, ``QLinearMatMul``)
  count as their float ops; a QDQ graph's ``Conv`` between Dequantize nodes is a Conv.
- ``ReduceSum`` / ``ReduceMean``: one add per input element (a text model's
  embedding bag is a ``Gather`` then a ``ReduceSum``: the adds are counted here).
- ``Gather``: no multiply-adds; the values it reads are reported apart as
  ``gathered_values`` (the text model's real work is memory, not arithmetic).
- Element-wise ops (Relu, Div, Softmax, pooling, ...) are not multiply-adds and are
  not counted, as in the usual FLOP-counting convention.

Latency is measured with ONNX Runtime on one thread (``intra_op_num_threads=1``),
so it is a per-core figure; it depends on the machine, which the report names
(CPU model and vector extensions). It is the calling thread's CPU time, where ONNX
Runtime computes with one intra-op thread: on a quiet machine that is the wall time,
and on a loaded one it leaves out the time the scheduler gave other processes, which
at load 12 on 2 cores made a batch of 32 take 2-5x its CPU time in wall time.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import shape_inference

from modelyard.bundle import INPUT_NAME
from modelyard.errors import ExportError
from modelyard.export.cpu import machine

_REDUCE_OPS = ("ReduceSum", "ReduceMean")
_CONV_WEIGHT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
"""Convolutions (float and ONNX Runtime's INT8 forms) and their weight input's index."""
_FLOAT_TYPES = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.BFLOAT16,
}
_WEIGHT_TYPES = _FLOAT_TYPES | {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}


@dataclass(frozen=True)
class MacCount:
    """Multiply-adds of one example, in total and by op type."""

    macs: int
    by_op: dict[str, int]
    gathered_values: int
    input_shape: list[int]
    """The per-example input shape counted (batch 1; a text model's padded width)."""


@dataclass(frozen=True)
class CostReport:
    parameters: int
    """Weight values in the graph (float and INT8 initializers)."""
    macs_per_example: int
    macs_by_op: dict[str, int]
    gathered_values_per_example: int
    input_shape: list[int]
    size_bytes: int
    """The ONNX file on disk."""
    latency_ms_batch1: float
    """Median CPU time of one ONNX Runtime call on one example (one thread)."""
    latency_ms_per_example_batch32: float
    """Median CPU time of one call on 32 examples, divided by 32 (one thread)."""
    repeats: int
    machine: dict[str, Any] = field(default_factory=dict)
    """Where the latency was measured: CPU model, vector extensions, ORT version."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dims(value: onnx.ValueInfoProto) -> list[int] | None:
    shape = value.type.tensor_type.shape
    if not value.type.tensor_type.HasField("shape"):
        return None
    dims = []
    for dim in shape.dim:
        if not dim.HasField("dim_value"):
            return None
        dims.append(int(dim.dim_value))
    return dims


def _with_input_shape(model: onnx.ModelProto, shape: list[int]) -> onnx.ModelProto:
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    initializers = {init.name for init in fixed.graph.initializer}
    inputs = [i for i in fixed.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ExportError(f"cost counting expects one graph input, found {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != len(shape):
        raise ExportError(
            f"input '{inputs[0].name}' has {len(dims)} axes; the example has {len(shape)}"
        )
    for dim, size in zip(dims, shape, strict=True):
        dim.Clear()
        dim.dim_value = size
    return fixed


def count_macs(model: onnx.ModelProto, example_shape: list[int]) -> MacCount:
    """Count multiply-adds for one example of shape ``example_shape`` (batch axis
    included and set to 1 here). Raises :class:`ExportError` when shape inference
    leaves a counted op's shape unknown: a silent zero would understate the cost."""
    shape = [1, *example_shape[1:]]
    inferred = shape_inference.infer_shapes(
        _with_input_shape(model, shape), strict_mode=False, data_prop=True
    )
    graph = inferred.graph
    shapes: dict[str, list[int] | None] = {
        v.name: _dims(v) for v in [*graph.input, *graph.value_info, *graph.output]
    }
    for init in graph.initializer:
        shapes[init.name] = [int(d) for d in init.dims]

    def known(name: str, op: str) -> list[int]:
        dims = shapes.get(name)
        if dims is None:
            raise ExportError(f"cannot count {op}: the shape of '{name}' is unknown")
        return dims

    by_op: dict[str, int] = {}
    gathered = 0
    for node in graph.node:
        op = node.op_type
        macs = 0
        if op in _CONV_WEIGHT:
            weight = known(node.input[_CONV_WEIGHT[op]], op)  # (out, in / group, k...)
            out = known(node.output[0], op)
            macs = int(np.prod(out)) * int(np.prod(weight[1:]))
        elif op == "Gemm":
            a = known(node.input[0], op)
            trans_a = next((a_.i for a_ in node.attribute if a_.name == "transA"), 0)
            inner = a[0] if trans_a else a[1]
            macs = int(np.prod(known(node.output[0], op))) * inner
        elif op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
            a = known(node.input[0], op)
            macs = int(np.prod(known(node.output[0], op))) * a[-1]
        elif op in _REDUCE_OPS:
            macs = int(np.prod(known(node.input[0], op)))
        elif op == "Gather":
            gathered += int(np.prod(known(node.output[0], op)))
        if macs:
            by_op[op] = by_op.get(op, 0) + macs
    return MacCount(sum(by_op.values()), by_op, gathered, shape)


def count_parameters(model: onnx.ModelProto) -> int:
    """Weight values: float and 8-bit initializers (shape constants are not weights)."""
    return sum(
        int(np.prod(init.dims))
        for init in model.graph.initializer
        if init.data_type in _WEIGHT_TYPES
    )


def _median_ms(session: Any, batch: np.ndarray, repeats: int) -> float:
    for _ in range(2):  # the first calls allocate
        session.run(None, {INPUT_NAME: batch})
    times = []
    for _ in range(repeats):
        started = time.thread_time()  # see the module docstring
        session.run(None, {INPUT_NAME: batch})
        times.append((time.thread_time() - started) * 1000.0)
    return float(np.median(times))


def measure_latency(onnx_path: Path, inputs: np.ndarray, repeats: int) -> tuple[float, float]:
    """Median ms of one call at batch 1, and per example at batch 32, on one thread.

    ``inputs`` are real model inputs (already preprocessed); they are tiled to 32 rows
    when fewer."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    batch32 = np.ascontiguousarray(inputs[np.resize(np.arange(len(inputs)), 32)])
    one = _median_ms(session, np.ascontiguousarray(inputs[:1]), repeats)
    per_example = _median_ms(session, batch32, repeats) / 32
    return one, per_example


def cost_report(onnx_path: Path, inputs: np.ndarray, repeats: int = 10) -> CostReport:
    """The full report for the graph at ``onnx_path``; ``inputs`` (real, preprocessed,
    at least one row) give the per-example shape and the timed batches."""
    if len(inputs) == 0:
        raise ExportError("cost report needs at least one example input")
    model = onnx.load(str(onnx_path))
    count = count_macs(model, list(inputs.shape))
    batch1, batch32 = measure_latency(onnx_path, inputs, repeats)
    return CostReport(
        parameters=count_parameters(model),
        macs_per_example=count.macs,
        macs_by_op=count.by_op,
        gathered_values_per_example=count.gathered_values,
        input_shape=count.input_shape,
        size_bytes=onnx_path.stat().st_size,
        latency_ms_batch1=batch1,
        latency_ms_per_example_batch32=batch32,
        repeats=repeats,
        machine=machine(),
    )


def mlflow_figures(cost: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """The report as MLflow metrics and params (the machine is a param: it says where
    the latency metrics were measured)."""
    metrics = {
        "cost_parameters": float(cost["parameters"]),
        "cost_macs_per_example": float(cost["macs_per_example"]),
        "cost_size_mb": cost["size_bytes"] / 1e6,
        "cost_latency_ms_batch1": float(cost["latency_ms_batch1"]),
        "cost_latency_ms_per_example_batch32": float(cost["latency_ms_per_example_batch32"]),
    }
    found = cost.get("machine") or {}
    params = {
        "cost_cpu": str(found.get("cpu", ""))[:250],
        "cost_cpu_flags": " ".join(found.get("cpu_flags", []))[:250],
        "cost_threads": "1",
    }
    return metrics, params
