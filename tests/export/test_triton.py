"""The Triton model repository and the bare ONNX export, checked with Triton's own schema."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from google.protobuf import text_format

from modelyard import bundle as bundle_io
from modelyard.bundle import Bundle
from modelyard.errors import ModelyardError
from modelyard.export.triton import write_onnx, write_triton_repository
from modelyard.features.image import to_model_input
from modelyard.predictor import Predictor


@functools.cache
def model_config_pb2() -> ModuleType:
    """The ModelConfig protobuf module tritonclient ships.

    ``tritonclient.grpc`` refuses to import without the grpc extra, so load the
    generated module from its file when the package import fails; it needs only protobuf.
    """
    tritonclient = pytest.importorskip("tritonclient")
    try:
        return importlib.import_module("tritonclient.grpc.model_config_pb2")
    except (ImportError, RuntimeError):
        path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
        spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def parse_config(path: Path) -> Any:
    pb2 = model_config_pb2()
    return text_format.Parse(path.read_text(), pb2.ModelConfig())


@pytest.fixture
def bundle(trained) -> Bundle:  # type: ignore[no-untyped-def]
    return bundle_io.read_bundle(trained.bundle_path)


def _images(bundle: Bundle, n: int = 5) -> np.ndarray:
    h, w, c = bundle.preprocessing.height, bundle.preprocessing.width, bundle.preprocessing.channels
    return np.random.default_rng(0).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def test_config_parses_with_tritons_model_config(bundle: Bundle, tmp_path: Path) -> None:
    folder = write_triton_repository(
        bundle, tmp_path / "repo", max_batch_size=16, instances=2, max_queue_delay_us=500
    )
    assert folder == tmp_path / "repo" / bundle.name
    config = parse_config(folder / "config.pbtxt")
    pb2 = model_config_pb2()
    embedding_dim = Predictor(bundle).predict_images(_images(bundle, 1)).embedding.shape[1]
    k = len(bundle.labels)

    assert config.name == bundle.name
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 16
    [tensor] = config.input
    assert (tensor.name, tensor.data_type) == ("input", pb2.TYPE_FP32)
    assert list(tensor.dims) == list(bundle.preprocessing.shape)
    outputs = {o.name: o for o in config.output}
    assert {name: list(o.dims) for name, o in outputs.items()} == {
        "logits": [k],
        "probabilities": [k],
        "embedding": [embedding_dim],
    }
    assert all(o.data_type == pb2.TYPE_FP32 for o in config.output)
    assert outputs["probabilities"].label_filename == "labels.txt"
    assert outputs["logits"].label_filename == ""
    # 32 exceeds max_batch_size, which Triton would refuse, so it is dropped.
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    [group] = config.instance_group
    assert (group.count, group.kind) == (2, pb2.ModelInstanceGroup.KIND_CPU)

    assert (folder / "labels.txt").read_text().splitlines() == list(bundle.labels)
    assert json.loads((folder / "bundle.json").read_text()) == bundle.manifest
    assert (folder / "reference_profile.json").is_file()
    # Only the model's folder: no staging leftovers a polling Triton could trip on.
    assert [p.name for p in (tmp_path / "repo").iterdir()] == [bundle.name]


def test_repository_graph_reproduces_the_bundle(bundle: Bundle, tmp_path: Path) -> None:
    folder = write_triton_repository(bundle, tmp_path, version=3)
    graph = folder / "3" / "model.onnx"
    assert graph.read_bytes() == bundle.onnx_path.read_bytes()
    images = _images(bundle)
    expected = Predictor(bundle).predict_images(images)
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    probabilities, embedding = session.run(
        ["probabilities", "embedding"], {"input": to_model_input(images, bundle.preprocessing)}
    )
    np.testing.assert_array_equal(probabilities, expected.probabilities)
    np.testing.assert_array_equal(embedding, expected.embedding)


def test_refuses_to_overwrite_unless_asked(bundle: Bundle, tmp_path: Path) -> None:
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.pbtxt").write_text('name: "other-model"\n')
    folder = write_triton_repository(bundle, tmp_path)
    stale = folder / "1" / "stale.onnx"
    stale.write_bytes(b"old")

    with pytest.raises(ModelyardError, match="already exists and is not empty"):
        write_triton_repository(bundle, tmp_path)
    assert stale.exists()

    write_triton_repository(bundle, tmp_path, max_batch_size=8, overwrite=True)
    assert not stale.exists()
    assert parse_config(folder / "config.pbtxt").max_batch_size == 8
    # Other models in the same repository are left alone.
    assert (other / "config.pbtxt").read_text() == 'name: "other-model"\n'


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kind": "GPU"}, "instance kind"),
        ({"max_batch_size": 0}, "at least 1"),
        ({"instances": 0}, "at least 1"),
        ({"version": 0}, "start at 1"),
    ],
)
def test_rejects_settings_triton_would_refuse(
    bundle: Bundle, tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ModelyardError, match=message):
        write_triton_repository(bundle, tmp_path / "repo", **settings)
    assert not (tmp_path / "repo" / bundle.name).exists()


def test_onnx_export_writes_graph_and_sidecar(bundle: Bundle, tmp_path: Path) -> None:
    path = write_onnx(bundle, tmp_path / "out" / "digits.onnx")
    assert path.read_bytes() == bundle.onnx_path.read_bytes()
    sidecar = json.loads((tmp_path / "out" / "digits.json").read_text())
    assert sidecar["labels"] == list(bundle.labels)
    assert sidecar["preprocessing"] == bundle.preprocessing.to_dict()
    assert sidecar["inputs"] == {"input": ["batch", *bundle.preprocessing.shape]}
    assert sidecar["outputs"]["probabilities"] == ["batch", len(bundle.labels)]

    with pytest.raises(ModelyardError, match="already exists"):
        write_onnx(bundle, path)
    write_onnx(bundle, path, overwrite=True)
    with pytest.raises(ModelyardError, match=r"\.onnx file"):
        write_onnx(bundle, tmp_path / "digits.json")
