"""Static INT8 forms against float32 in ONNX Runtime, one thread, arms alternated.

    nice -n 10 .venv/bin/python benchmarks/frontier/int8_variants.py \\
        --bundle cnn_fast=<float32 bundle> --bundle old_cnn=<float32 bundle> \\
        --rounds 5 --json benchmarks/frontier/results/int8-variants-<date>.json [--profile]

For every float32 bundle, each static INT8 form in ``VARIANTS`` is made from the same
calibration images (``--calibration-examples`` training images, seeded as
``modelyard export quantize --static`` picks them) and scored on the bundle's test
split: accuracy, drop against float32 and argmax agreement. Then every session (float32
and each form, ``intra_op_num_threads=1``, sequential, as the cost report times them)
is timed at batch 1 and batch 32 in rounds; within a round the arms run one after the
other in an order rotated each round, so a loaded spell of the shared machine falls on
all of them, and each form's speed-up is taken against the float32 arm of the same
round. ``--profile`` adds ONNX Runtime's per-op profile at batch 32 (which kernels the
time goes to). The machine (CPU model, vector extensions, load) is in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime import quantization as q
from onnxruntime.quantization.shape_inference import quant_pre_process

from modelyard import bundle as bundle_io
from modelyard.bundle import INPUT_NAME
from modelyard.export.cost import machine
from modelyard.export.quantize import STATIC_OPS, _calibration_reader
from modelyard.scoring import config_for, labelled_split, model_inputs

U8, S8 = q.QuantType.QUInt8, q.QuantType.QInt8
QDQ, QOP = q.QuantFormat.QDQ, q.QuantFormat.QOperator
BASE: dict[str, Any] = {
    "quant_format": QDQ,
    "per_channel": True,
    "activation_type": U8,
    "weight_type": S8,
    "reduce_range": False,
    "extra_options": {},
}
"""What ``modelyard export quantize --static`` writes (QDQ, per-channel, u8 activations,
s8 weights); each variant changes one thing."""
VARIANTS: dict[str, dict[str, Any]] = {
    "qdq_u8s8_pc": {},
    "qoperator_u8s8_pc": {"quant_format": QOP},
    "qdq_s8s8_pc": {"activation_type": S8},
    "qdq_u8u8_pc": {"weight_type": U8},
    "qdq_u8s8_per_tensor": {"per_channel": False},
    "qdq_u8s8_pc_reduce_range": {"reduce_range": True},
    "qdq_u8s8_pc_force_pool": {"extra_options": {"ForceQuantizeNoInputCheck": True}},
    # Convs MLAS cannot run on its symmetric int8 kernels (convsym.cpp: input channels
    # must be a multiple of 4, so not the 1-channel stem) stay float32.
    "qdq_u8s8_pc_float_stem": {"float_stem": True},
    "qdq_s8s8_pc_float_stem": {"float_stem": True, "activation_type": S8},
}
SESSION_LEVELS = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
}


def unaligned_convs(graph: Path) -> list[str]:
    """Group-1 Convs whose input channels are not a multiple of 4: MLAS runs them as
    im2col + an int8 GEMM (AMX here) instead of its symmetric-conv kernels."""
    model = onnx.load(str(graph))
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        dims = weights.get(node.input[1]) if node.op_type == "Conv" else None
        if group == 1 and dims and len(dims) > 2 and dims[1] % 4:
            found.append(node.name)
    return found


def _quantize(source: Path, out: Path, calibration: np.ndarray, change: dict[str, Any]) -> Path:
    prepared = out.with_suffix(".prepared.onnx")
    quant_pre_process(str(source), str(prepared))
    options = {**BASE, **change}
    if options.pop("float_stem", False):
        options["nodes_to_exclude"] = unaligned_convs(prepared)
    q.quantize_static(
        str(prepared),
        str(out),
        _calibration_reader(q, calibration),
        op_types_to_quantize=list(STATIC_OPS),
        calibrate_method=q.CalibrationMethod.MinMax,
        **options,
    )
    return out


def _session(path: Path, level: str = "all", profile: str | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = SESSION_LEVELS[level]
    if profile is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _predict(session: ort.InferenceSession, inputs: np.ndarray) -> np.ndarray:
    out = [
        session.run(None, {INPUT_NAME: inputs[i : i + 256]})[0] for i in range(0, len(inputs), 256)
    ]
    return np.concatenate(out).argmax(axis=1)


def _median_ms(call: Callable[[], Any], budget_s: float) -> dict[str, float]:
    """Median wall and thread-CPU ms of one call. With one intra-op thread ORT computes
    on the calling thread, so its CPU time leaves out the time the scheduler gave other
    processes: on a loaded machine the wall time of a long call is mostly waiting."""
    for _ in range(3):
        call()
    wall: list[float] = []
    cpu: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(wall) < 15 or (time.perf_counter() < deadline and len(wall) < 2000):
        started, started_cpu = time.perf_counter(), time.thread_time()
        call()
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return {"wall": statistics.median(wall) * 1000.0, "cpu": statistics.median(cpu) * 1000.0}


def _op_profile(path: Path, batch: np.ndarray, work: Path, level: str) -> dict[str, float]:
    """Share of the time per op type over 50 calls, from ONNX Runtime's profiler."""
    session = _session(path, level, profile=str(work / f"{path.stem}-{level}"))
    for _ in range(50):
        session.run(None, {INPUT_NAME: batch})
    events = json.loads(Path(session.end_profiling()).read_text())
    by_op: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            by_op[op] = by_op.get(op, 0.0) + event["dur"]
    total = sum(by_op.values()) or 1.0
    return {op: round(us / total, 3) for op, us in sorted(by_op.items(), key=lambda kv: -kv[1])}


def measure(name: str, bundle_path: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    bundle = bundle_io.load(bundle_path)
    cfg = config_for(bundle, [])
    train = labelled_split(bundle, cfg, "train").examples
    rows = np.random.default_rng(cfg.train.seed).permutation(len(train))
    calibration = model_inputs(bundle, train[rows[: args.calibration_examples]])
    test = labelled_split(bundle, cfg, "test")
    inputs = model_inputs(bundle, test.examples)
    labels = np.asarray(test.labels)

    arms: dict[str, tuple[Path, str]] = {"fp32": (bundle.onnx_path, "all")}
    for variant, change in VARIANTS.items():
        arms[variant] = (
            _quantize(bundle.onnx_path, work / f"{name}-{variant}.onnx", calibration, change),
            "all",
        )
    arms["qdq_u8s8_pc@extended"] = (arms["qdq_u8s8_pc"][0], "extended")
    arms["fp32@extended"] = (bundle.onnx_path, "extended")

    sessions = {arm: _session(path, level) for arm, (path, level) in arms.items()}
    fp32 = _predict(sessions["fp32"], inputs)
    quality: dict[str, Any] = {}
    for arm, session in sessions.items():
        predicted = _predict(session, inputs)
        accuracy = float((predicted == labels).mean())
        quality[arm] = {
            "accuracy": accuracy,
            "accuracy_drop": float((fp32 == labels).mean()) - accuracy,
            "argmax_agreement": float((predicted == fp32).mean()),
            "size_bytes": arms[arm][0].stat().st_size,
        }

    batches = {1: np.ascontiguousarray(inputs[:1]), 32: np.ascontiguousarray(inputs[:32])}
    names = list(sessions)
    rounds: list[dict[str, Any]] = []
    for round_ in range(args.rounds):
        shift = round_ % len(names)
        order = names[shift:] + names[:shift]
        load = os.getloadavg()[0]
        times: dict[str, dict[int, dict[str, float]]] = {arm: {} for arm in order}
        for arm in order:
            for size, batch in batches.items():
                session = sessions[arm]
                times[arm][size] = _median_ms(
                    lambda s=session, b=batch: s.run(None, {INPUT_NAME: b}), args.budget_s
                )
        rounds.append(
            {"order": order, "load_before": load, "load_after": os.getloadavg()[0], "ms": times}
        )
        print(name, "round", round_, f"load {load:.1f}", flush=True)

    summary: dict[str, Any] = {}
    for arm in names:
        row: dict[str, Any] = {**quality[arm]}
        for size in batches:
            for clock in ("wall", "cpu"):
                ms = [r["ms"][arm][size][clock] for r in rounds]
                speedup = [r["ms"]["fp32"][size][clock] / r["ms"][arm][size][clock] for r in rounds]
                row[f"{clock}_ms_batch{size}"] = statistics.median(ms)
                row[f"{clock}_speedup_batch{size}"] = statistics.median(speedup)
                row[f"{clock}_speedup_batch{size}_range"] = [min(speedup), max(speedup)]
        summary[arm] = row
    result: dict[str, Any] = {
        "bundle": bundle_path,
        "n_test": len(labels),
        "summary": summary,
        "rounds": rounds,
    }
    if args.profile:
        result["op_profile_batch32"] = {
            arm: _op_profile(path, batches[32], work, level)
            for arm, (path, level) in arms.items()
            if arm
            in ("fp32", "qdq_u8s8_pc", "qdq_s8s8_pc", "qdq_u8u8_pc", "qdq_u8s8_pc_float_stem")
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bundle", action="append", required=True, help="name=float32 bundle folder"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--budget-s", type=float, default=0.4, help="timing per arm, batch and round"
    )
    parser.add_argument("--calibration-examples", type=int, default=512)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    out: dict[str, Any] = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.bundle:
            name, path = spec.split("=", 1)
            out[name] = measure(name, path, args, Path(tmp))
            args.json.write_text(json.dumps(out, indent=1))
    out["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.json.write_text(json.dumps(out, indent=1))
    for name in out:
        if isinstance(out[name], dict) and "summary" in out[name]:
            print(f"\n{name}")
            for arm, row in out[name]["summary"].items():
                print(
                    f"  {arm:26} acc {row['accuracy']:.4f} agree {row['argmax_agreement']:.4f}"
                    + "".join(
                        f" | {clock} b{size} {row[f'{clock}_ms_batch{size}']:.3f} ms "
                        f"{row[f'{clock}_speedup_batch{size}']:.2f}x"
                        f"[{row[f'{clock}_speedup_batch{size}_range'][0]:.2f}-"
                        f"{row[f'{clock}_speedup_batch{size}_range'][1]:.2f}]"
                        for clock in ("cpu", "wall")
                        for size in (1, 32)
                    )
                )


if __name__ == "__main__":
    main()
