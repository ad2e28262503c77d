"""INT8 dynamic quantization: a loadable bundle, a fallback, and an honest comparison."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from tests.helpers import write_image

from modelyard import bundle as bundle_io
from modelyard.bundle import Bundle
from modelyard.config import compose_config
from modelyard.errors import ModelyardError
from modelyard.export import quantize
from modelyard.export.cost import count_macs
from modelyard.export.quantize import compare_quantized, quantize_bundle
from modelyard.predictor import Predictor


def _op_types(bundle: Bundle) -> set[str]:
    return {node.op_type for node in onnx.load(str(bundle.onnx_path)).graph.node}


@pytest.fixture(scope="module")
def registered(trained, session_home: Path) -> Iterator[Bundle]:  # type: ignore[no-untyped-def]
    """The session's digits model as the registry serves it (so it has a version)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(session_home))
        yield bundle_io.load("digits-cnn@candidate")


@pytest.fixture(scope="module")
def quantized(registered: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return quantize_bundle(registered, tmp_path_factory.mktemp("int8") / "bundle")


def test_quantized_bundle_loads_and_predicts_like_the_source(
    registered: Bundle, quantized: Bundle
) -> None:
    loaded = bundle_io.load(quantized.path)
    assert loaded.labels == registered.labels and loaded.task == registered.task
    assert loaded.preprocessing == registered.preprocessing
    assert loaded.reference_profile == registered.reference_profile
    meta = loaded.manifest["quantization"]
    assert meta["method"] == "dynamic" and meta["weight_type"] == "int8"
    assert meta["op_types"] == (["MatMul", "Gemm"] if meta["fallback"] else "all")
    assert registered.version is not None
    assert meta["source_version"] == registered.version
    assert meta["source_metrics"] == registered.metrics
    assert loaded.metrics == {}  # the float32 numbers do not describe this graph
    assert "parity" not in loaded.manifest.get("onnx", {})
    assert {"ConvInteger", "MatMulInteger"} & _op_types(loaded)
    # The float32 cost report moves aside; the INT8 graph does the same multiply-adds.
    assert "cost" not in loaded.manifest
    assert meta["source_cost"] == registered.manifest["cost"]
    count = count_macs(onnx.load(str(loaded.onnx_path)), meta["source_cost"]["input_shape"])
    assert count.macs == meta["source_cost"]["macs_per_example"]

    spec = registered.preprocessing
    shape = (16, spec.height, spec.width, spec.channels)
    images = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    fp32 = Predictor(registered).predict_images(images)
    int8 = Predictor(loaded).predict_images(images)
    assert int8.probabilities.shape == fp32.probabilities.shape
    assert np.abs(int8.probabilities - fp32.probabilities).max() < 0.2


def test_int8_is_nearly_as_accurate_and_not_larger(
    trained,  # type: ignore[no-untyped-def]
    registered: Bundle,
    quantized: Bundle,
) -> None:
    report = compare_quantized(registered, quantized, compose_config(["task=digits"]))
    # The float32 figure is the one training measured on the same split.
    assert report.accuracy_fp32 == pytest.approx(trained.metrics["test_accuracy"])
    assert report.accuracy_drop == pytest.approx(report.accuracy_fp32 - report.accuracy_int8)
    assert report.accuracy_drop < 0.05
    assert report.argmax_agreement > 0.9
    assert report.size_int8_bytes <= report.size_fp32_bytes
    assert report.latency_fp32_ms > 0 and report.latency_int8_ms > 0
    assert report.n > 0 and report.split == "test" and report.latency_batch == 32


def test_compare_refuses_a_dataset_with_other_classes(
    registered: Bundle, quantized: Bundle, tmp_path: Path
) -> None:
    for cls in ("cat", "dog"):
        for i in range(6):
            write_image(tmp_path / cls / f"{i}.png", (12, 12), "L", 60 + 100 * (cls == "dog"))
    pets = compose_config(["task=image_folder", f"data.path={tmp_path}", "data.image_size=8"])
    with pytest.raises(ModelyardError, match="task=digits"):
        compare_quantized(registered, quantized, pets)


def test_falls_back_to_matmul_only_when_conv_int8_cannot_run(
    registered: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[Path] = []

    def first_fails(path: Path) -> bool:
        attempts.append(path)
        return len(attempts) > 1

    monkeypatch.setattr(quantize, "_loads", first_fails)
    fallback = quantize_bundle(registered, tmp_path / "q")
    assert fallback.manifest["quantization"]["op_types"] == ["MatMul", "Gemm"]
    assert fallback.manifest["quantization"]["fallback"] is True
    assert "ConvInteger" not in _op_types(fallback)
    spec = registered.preprocessing
    images = np.zeros((2, spec.height, spec.width, spec.channels), dtype=np.uint8)
    assert Predictor(fallback).predict_images(images).probabilities.shape == (
        2,
        len(registered.labels),
    )

    monkeypatch.setattr(quantize, "_loads", lambda path: False)
    with pytest.raises(ModelyardError, match="cannot run the INT8 graph"):
        quantize_bundle(registered, tmp_path / "never")


def test_matmul_only_on_request(registered: Bundle, tmp_path: Path) -> None:
    matmul = quantize_bundle(registered, tmp_path / "q", op_types=quantize.MATMUL_ONLY)
    meta = matmul.manifest["quantization"]
    assert meta["op_types"] == ["MatMul", "Gemm"] and meta["fallback"] is False
    assert "MatMulInteger" in _op_types(matmul) and "ConvInteger" not in _op_types(matmul)


def test_refuses_a_non_empty_folder(registered: Bundle, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ModelyardError, match="--overwrite"):
        quantize_bundle(registered, tmp_path)
    assert not (tmp_path / "model.onnx").exists()


def _report(
    int8_ms: float, flags: tuple[str, ...], amx: bool | None = None
) -> quantize.QuantizationReport:
    return quantize.QuantizationReport(
        "test", 10, 0.9, 0.9, 0.0, 1.0, 100, 30, 1.0, int8_ms, 32, "Some CPU", flags, amx
    )


AMX = ("amx_int8", "amx_tile", "avx2", "avx512_vnni", "avx512f")


@pytest.mark.parametrize(
    ("int8_ms", "flags", "amx", "method", "says"),
    [
        (0.5, ("avx2",), None, "static", None),
        (1.5, ("avx", "avx2"), None, "static", "Some CPU (avx2) has no int8 dot-product"),
        (1.5, ("avx2", "avx512_vnni", "avx512f"), False, "static", "even with avx512_vnni"),
        (1.5, AMX, True, "static", "even with amx_int8, avx512_vnni on"),
        # AMX the OS left off is named as off, and not as an int8 extension ORT used.
        (
            1.5,
            AMX,
            False,
            "static",
            "even with avx512_vnni on Some CPU (amx_int8 (not enabled by the OS), avx512_vnni",
        ),
        (1.5, ("avx2",), None, "dynamic", "ConvInteger has no fast kernel"),
    ],
)
def test_the_speed_verdict_says_why_int8_is_not_faster(
    int8_ms: float, flags: tuple[str, ...], amx: bool | None, method: str, says: str | None
) -> None:
    verdict = quantize.speed_verdict(_report(int8_ms, flags, amx), method)
    if says is None:
        assert verdict is None
    else:
        assert verdict is not None and says in verdict
        assert "at batch 32 here (1.500 vs 1.000 ms)" in verdict


def test_latency_is_the_threads_cpu_time_not_the_time_others_took(
    registered: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call that waits 5 ms without computing (as one preempted on a loaded machine
    does) costs next to nothing: the comparison times CPU, not the scheduler."""
    import time

    class Waiting:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def predict_inputs(self, batch: np.ndarray) -> None:
            time.sleep(0.005)

    monkeypatch.setattr(quantize, "Predictor", Waiting)
    inputs = np.zeros((4, 1, 8, 8), dtype=np.float32)
    assert quantize._latency_ms(registered, inputs, budget_s=0.0) < 1.0
