"""An INT8 copy of a bundle (ONNX Runtime dynamic quantization) and what it costs.

Dynamic quantization stores weights as int8 and quantizes activations on the fly,
so it needs no calibration data. Static quantization (``static=True``) fixes the
activations' scales from calibration on training images and writes a QDQ graph with
per-channel int8 weights (7 bits of them: :data:`REDUCE_RANGE`), which ONNX Runtime
fuses into int8 kernels (fast where the CPU has int8 dot products: AMX, AVX-512 VNNI or
AVX-VNNI). Whether either is worth it
depends on the model and the CPU, so :func:`compare_quantized` measures the INT8
bundle against its source on a real split: accuracy, agreement, file size and
single-thread latency.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelyard import bundle as bundle_io
from modelyard.bundle import Bundle, write_bundle
from modelyard.config.schema import Config
from modelyard.errors import ExportError, MissingExtra, UsageError
from modelyard.export.cpu import INT8_EXTENSIONS, named_extensions
from modelyard.manifest import FILES_KEY
from modelyard.predictor import Predictor

LATENCY_BATCH = 32
COST_EXAMPLES = 64
"""Real test inputs the INT8 bundle's cost report is timed on (tiled to batch 32)."""
# Conv layers become ConvInteger, which not every ONNX Runtime build implements for
# int8 weights, and which the CPU build that does runs several times slower than
# float32 Conv (no fused kernel). Quantizing only these keeps float32 speed and still
# shrinks the dense layers; it is also the fallback when ConvInteger cannot run.
MATMUL_ONLY = ("MatMul", "Gemm")
STATIC_OPS = ("Conv", "Gemm", "MatMul")
"""Ops static quantization rewrites. Softmax and the outputs stay float32: the served
probabilities keep their precision."""
CALIBRATION_EXAMPLES = 512
"""Training images the static scales are calibrated on (a seeded random sample)."""
# Keys write_bundle sets itself; everything else in the source manifest is carried over.
_OWN_KEYS = (
    "format_version", "name", "task", "kind", "labels", "preprocessing", "metrics", FILES_KEY,
)  # fmt: skip


@dataclass(frozen=True)
class QuantizationReport:
    """The INT8 bundle against its float32 source on one split."""

    split: str
    n: int
    accuracy_fp32: float
    accuracy_int8: float
    accuracy_drop: float
    """fp32 minus int8 accuracy; negative when INT8 happens to score higher."""
    argmax_agreement: float
    """Share of examples where both predict the same class."""
    size_fp32_bytes: int
    size_int8_bytes: int
    latency_fp32_ms: float
    """Median CPU time of one batch of ``latency_batch`` on one thread."""
    latency_int8_ms: float
    latency_batch: int
    cpu: str = ""
    """The CPU both latencies were measured on."""
    cpu_flags: tuple[str, ...] = ()
    """Its vector extensions (AVX2, AVX-512, VNNI ...): int8 speed depends on them."""
    amx_enabled: bool | None = None
    """Whether the OS let ONNX Runtime use the CPU's AMX tiles (None: not recorded)."""

    @property
    def extensions(self) -> list[str]:
        """The extensions reports name (:func:`modelyard.export.cpu.named_extensions`)."""
        return named_extensions(self.cpu_flags, self.amx_enabled)

    @property
    def faster(self) -> bool:
        return self.latency_int8_ms < self.latency_fp32_ms

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_flags": list(self.cpu_flags), "faster": self.faster}


def speed_verdict(report: QuantizationReport, method: str) -> str | None:
    """Why INT8 is not faster than float32 here, or None when it is."""
    if report.faster:
        return None
    named = report.extensions
    int8 = [f for f in named if f in INT8_EXTENSIONS]  # not AMX the OS left off
    cpu = f"{report.cpu or 'this CPU'} ({', '.join(named) or 'no AVX2'})"
    if method == "dynamic":
        why = "ONNX Runtime's CPU ConvInteger has no fast kernel; --matmul-only keeps float32 speed"
    elif not int8:
        why = (
            f"{cpu} has no int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX), so "
            "int8 kernels gain little over float32 and the Quantize/Dequantize steps cost more"
        )
    else:
        why = (
            f"even with {', '.join(int8)} on {cpu}, this model is too small for int8 "
            "kernels to repay the Quantize/Dequantize steps at this batch"
        )
    return (
        f"INT8 ({method}) is not faster than float32 at batch {report.latency_batch} here "
        f"({report.latency_int8_ms:.3f} vs {report.latency_fp32_ms:.3f} ms): {why}"
    )


@dataclass(frozen=True)
class Quantized:
    bundle: Bundle
    report: QuantizationReport


def _quantization_api() -> Any:
    try:
        from onnxruntime import quantization
    except ImportError as error:  # onnxruntime.quantization imports the onnx package
        raise MissingExtra(
            f"INT8 quantization needs the onnx package ({error}); "
            "install it with: pip install 'modelyard[train]'"
        ) from error
    return quantization


def _loads(path: Path) -> bool:
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # ORT raises its own pybind classes (NotImplemented, Fail ...)
        return False
    return True


def _calibration_reader(quantization: Any, inputs: np.ndarray, batch: int = 32) -> Any:
    """Feeds ``inputs`` (preprocessed model inputs) to the calibrator in batches."""
    from modelyard.bundle import INPUT_NAME

    class Reader(quantization.CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no types
        def __init__(self) -> None:
            self.batches = iter(
                [{INPUT_NAME: inputs[i : i + batch]} for i in range(0, len(inputs), batch)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    return Reader()


REDUCE_RANGE = True
"""Static INT8 weights take 7 bits (ONNX Runtime's ``reduce_range``), wherever the bundle
is made, because it may be served on a CPU without int8 dot products. There (AVX2
only) MLAS multiplies uint8 activations by int8 weights with ``vpmaddubsw``, which sums
each pair of products into int16 and saturates past 32,767 (255 x 127 x 2 = 64,770):
on an AVX2-only AMD EPYC the full-range ``cnn_fast`` lost 0.6 points of accuracy and
disagreed with float32 on 1.0% of test images, the old CNN on 0.6%; with 7-bit weights
(2 x 255 x 64 = 32,640) both agreed on 99.8-100%, with no speed cost on the Xeon (AMX,
VNNI) and within the round-to-round spread on that EPYC (benchmarks/frontier/RESULTS.md,
2026-12-07)."""


def _quantize_static(
    quantization: Any, prepared: Path, quantized: Path, calibration: np.ndarray
) -> dict[str, Any]:
    quantization.quantize_static(
        str(prepared),
        str(quantized),
        _calibration_reader(quantization, calibration),
        quant_format=quantization.QuantFormat.QDQ,
        op_types_to_quantize=list(STATIC_OPS),
        per_channel=True,
        reduce_range=REDUCE_RANGE,
        activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8,
        calibrate_method=quantization.CalibrationMethod.MinMax,
    )
    if not _loads(quantized):
        raise ExportError(
            f"ONNX Runtime cannot run the static INT8 graph quantized from {prepared}; "
            "serve the float32 bundle"
        )
    return {
        "method": "static",
        "format": "QDQ",
        "per_channel": True,
        "weight_type": "int8",
        "weight_bits": 7 if REDUCE_RANGE else 8,
        "activation_type": "uint8",
        "op_types": list(STATIC_OPS),
        "calibration": {"method": "minmax", "split": "train", "examples": len(calibration)},
        "fallback": False,
    }


def _quantize_graph(
    source: Path,
    work: Path,
    op_types: Sequence[str] | None,
    calibration: np.ndarray | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Quantize ``source`` into ``work``; return the graph and how it was made.

    With ``calibration`` (preprocessed training inputs) the quantization is static."""
    quantization = _quantization_api()
    prepared = work / "prepared.onnx"
    try:
        # Shape inference and graph optimisation first, as ORT recommends; the
        # quantizer works without it, so any failure here only costs that polish.
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(source), str(prepared))
        preprocessed = True
    except Exception:
        prepared, preprocessed = source, False
    quantized = work / "model.onnx"
    if calibration is not None:
        method = _quantize_static(quantization, prepared, quantized, calibration)
        return quantized, {**method, "preprocessed": preprocessed}
    attempts = [list(op_types)] if op_types else [None, list(MATMUL_ONLY)]
    for attempt in attempts:
        quantization.quantize_dynamic(
            str(prepared),
            str(quantized),
            weight_type=quantization.QuantType.QInt8,
            op_types_to_quantize=attempt,
        )
        if _loads(quantized):
            break
    else:
        raise ExportError(
            f"ONNX Runtime cannot run the INT8 graph quantized from {source} "
            f"(ops: {attempts[-1] or 'all'}); serve the float32 bundle"
        )
    return quantized, {
        "method": "dynamic",
        "weight_type": "int8",
        "op_types": attempt or "all",
        # True when ConvInteger could not run here and only MatMul/Gemm were quantized.
        "fallback": attempt is not attempts[0],
        "preprocessed": preprocessed,
    }


def quantize_bundle(
    bundle: Bundle,
    out: Path,
    *,
    op_types: Sequence[str] | None = None,
    overwrite: bool = False,
    calibration: np.ndarray | None = None,
) -> Bundle:
    """Write an INT8 dynamic-quantized copy of ``bundle`` to ``out`` and return it
    (static, QDQ, per-channel when ``calibration`` inputs are given).

    ``op_types`` limits quantization to those ONNX ops (e.g. :data:`MATMUL_ONLY`);
    by default every supported op is, falling back to MatMul/Gemm only when ONNX
    Runtime cannot run the result.
    Labels, preprocessing and the reference profile are the source's; its metrics,
    measured on the float32 graph, move under ``quantization.source_metrics``.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise UsageError(f"{out} already exists and is not empty; pass --overwrite to replace it")
    extra = {k: v for k, v in bundle.manifest.items() if k not in _OWN_KEYS}
    if isinstance(extra.get("onnx"), dict):
        # The parity check compared torch with the float32 graph, not this one.
        extra["onnx"] = {k: v for k, v in extra["onnx"].items() if k != "parity"}
    with tempfile.TemporaryDirectory() as tmp:
        graph, method = _quantize_graph(bundle.onnx_path, Path(tmp), op_types, calibration)
        extra["quantization"] = {
            **method,
            "source_version": bundle.version,
            "source_uri": bundle.source_uri,
            "source_metrics": bundle.metrics,
        }
        # The source's cost report describes the float32 graph; quantize_model
        # measures this one.
        source_cost = extra.pop("cost", None)
        if source_cost is not None:
            extra["quantization"]["source_cost"] = source_cost
        return write_bundle(
            out,
            name=bundle.name,
            task=bundle.task,
            labels=bundle.labels,
            preprocessing=bundle.preprocessing,
            onnx_file=graph,
            reference_profile=bundle.reference_profile,
            metrics={},
            extra=extra,
        )


def _latency_ms(bundle: Bundle, inputs: np.ndarray, budget_s: float = 2.0) -> float:
    """Median single-thread time of one fixed batch, after a warm-up.

    Timed as this thread's CPU time: with one intra-op thread ONNX Runtime computes on
    the calling thread, so this is the wall time of a quiet machine, without the time
    the scheduler gives other processes on a loaded one (at load 12 on 2 cores the wall
    times of float32 and INT8 swapped order from call to call)."""
    batch = inputs[np.arange(LATENCY_BATCH) % inputs.shape[0]]
    predictor = Predictor(bundle, intra_op_threads=1, batch_size=LATENCY_BATCH)
    for _ in range(3):
        predictor.predict_inputs(batch)
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 20 or (time.perf_counter() < deadline and len(times) < 200):
        start = time.thread_time()
        predictor.predict_inputs(batch)
        times.append(time.thread_time() - start)
    return statistics.median(times) * 1000.0


def compare_quantized(
    original: Bundle, quantized: Bundle, cfg: Config, split: str = "test"
) -> QuantizationReport:
    """Score both bundles through :class:`Predictor` on a split of the configured dataset."""
    from modelyard.export.cpu import machine
    from modelyard.scoring import labelled_split, model_inputs

    data = labelled_split(original, cfg, split)
    if quantized.labels != original.labels:
        raise ExportError("the quantized bundle's labels differ from the original's")
    inputs = model_inputs(original, data.examples)
    fp32 = Predictor(original).predict_inputs(inputs).predicted
    int8 = Predictor(quantized).predict_inputs(inputs).predicted
    accuracy_fp32 = float((fp32 == data.labels).mean())
    accuracy_int8 = float((int8 == data.labels).mean())
    found = machine()
    return QuantizationReport(
        split=split,
        n=int(data.labels.shape[0]),
        accuracy_fp32=accuracy_fp32,
        accuracy_int8=accuracy_int8,
        accuracy_drop=accuracy_fp32 - accuracy_int8,
        argmax_agreement=float((fp32 == int8).mean()),
        size_fp32_bytes=original.onnx_path.stat().st_size,
        size_int8_bytes=quantized.onnx_path.stat().st_size,
        latency_fp32_ms=_latency_ms(original, inputs),
        latency_int8_ms=_latency_ms(quantized, inputs),
        latency_batch=LATENCY_BATCH,
        cpu=str(found["cpu"]),
        cpu_flags=tuple(found["cpu_flags"]),
        amx_enabled=bool(found["amx_enabled"]),
    )


def quantize_model(
    model_uri: str,
    out: Path,
    overrides: Sequence[str] = (),
    split: str = "test",
    op_types: Sequence[str] | None = None,
    overwrite: bool = False,
    static: bool = False,
    calibration_examples: int = CALIBRATION_EXAMPLES,
) -> Quantized:
    """Quantize a registered or local model, measure it, and record the result in it.

    The dataset is the model's own task unless ``overrides`` name another
    (``task=...``). The INT8 bundle's ``metrics`` hold its measured accuracy and its
    manifest the whole comparison, so the numbers travel with the file.
    """
    from modelyard.scoring import config_for

    original = bundle_io.load(model_uri)
    refusal = original.modality.int8_refusal
    if refusal is not None:
        raise UsageError(f"{original.name} is a {original.kind} model; {refusal}")
    from modelyard.export.cost import cost_report
    from modelyard.scoring import labelled_split, model_inputs

    cfg = config_for(original, overrides)
    calibration = None
    if static:
        if op_types is not None:
            raise UsageError("--static quantizes Conv, Gemm and MatMul; drop --matmul-only")
        train = labelled_split(original, cfg, "train").examples
        rows = np.random.default_rng(cfg.train.seed).permutation(len(train))
        calibration = model_inputs(original, train[rows[:calibration_examples]])
    quantized = quantize_bundle(
        original, out, op_types=op_types, overwrite=overwrite, calibration=calibration
    )
    report = compare_quantized(original, quantized, cfg, split)

    examples = labelled_split(original, cfg, split).examples[:COST_EXAMPLES]
    cost = cost_report(quantized.onnx_path, model_inputs(original, examples))
    recorded = quantized.fields.quantization
    if recorded is None:  # quantize_bundle always records how it quantized
        raise ExportError(f"{quantized.path} records no quantization")
    measured = {
        "metrics": {f"{split}_accuracy": report.accuracy_int8},
        "cost": cost.to_dict(),
        "quantization": {
            **recorded.record,
            "comparison": report.to_dict(),
            "speed_verdict": speed_verdict(report, recorded.method),
        },
    }
    return Quantized(bundle_io.update_manifest(quantized, measured), report)
