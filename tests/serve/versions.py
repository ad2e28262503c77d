"""Extra registered versions of the digits model for traffic tests: a copy made
slower by real extra work in its graph, and one whose graph cannot load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np


def register_copy(folder: Path, experiment_id: str, name: str = "digits-cnn") -> str:
    """Log ``folder`` as an MLflow model and register it; returns the new version.

    MLflow keeps the folder under its own name and servers look for ``bundle/``:
    name the folder ``bundle``, as training does. Registering moves ``candidate``."""
    import mlflow

    from modelyard import registry, tracking
    from modelyard.mlflow_model import log_bundle_model

    tracking.configure()
    with mlflow.start_run(experiment_id=experiment_id):
        images = np.zeros((2, 8, 8, 1), np.uint8)
        uri = log_bundle_model(folder, images, np.full((2, 10), 0.1, np.float32))
    return registry.register(uri, name)


def set_alias(alias: str, version: str, name: str = "digits-cnn") -> None:
    from mlflow import MlflowClient

    from modelyard import tracking

    tracking.configure()
    MlflowClient().set_registered_model_alias(name, alias, version)


def _rechecksum(folder: Path) -> None:
    from modelyard.bundle import FILES_KEY, MANIFEST, file_sha256

    manifest = json.loads((folder / MANIFEST).read_text())
    for file_name in manifest[FILES_KEY]:
        path = folder / file_name
        manifest[FILES_KEY][file_name] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def slower_copy(source: Path, folder: Path, width: int = 2048, layers: int = 12) -> Path:
    """The same predictions, after ``layers`` dense ``width x width`` products of the
    input (added to the probabilities times zero): a slower model, same answers."""
    import onnx
    from onnx import helper, numpy_helper

    shutil.copytree(source, folder)
    model = onnx.load(str(folder / "model.onnx"))
    graph = model.graph
    input_name = graph.input[0].name
    producer = next(n for n in graph.node if "probabilities" in n.output)
    producer.output[list(producer.output).index("probabilities")] = "probabilities_fast"
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array([-1, 64], np.int64), "slow_shape"),
        numpy_helper.from_array(rng.normal(size=(64, width)).astype(np.float32), "slow_w0"),
        numpy_helper.from_array(
            (rng.normal(size=(width, width)) / width).astype(np.float32), "slow_w"
        ),
        numpy_helper.from_array(np.array(0.0, np.float32), "slow_zero"),
    ]
    nodes = [
        helper.make_node("Reshape", [input_name, "slow_shape"], ["slow_flat"]),
        helper.make_node("MatMul", ["slow_flat", "slow_w0"], ["slow_h0"]),
    ]
    for i in range(layers):
        nodes.append(helper.make_node("MatMul", [f"slow_h{i}", "slow_w"], [f"slow_m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"slow_m{i}"], [f"slow_h{i + 1}"]))
    nodes += [
        helper.make_node("ReduceSum", [f"slow_h{layers}"], ["slow_sum"], keepdims=0),
        helper.make_node("Mul", ["slow_sum", "slow_zero"], ["slow_nothing"]),
        helper.make_node("Add", ["probabilities_fast", "slow_nothing"], ["probabilities"]),
    ]
    graph.initializer.extend(inits)
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    _rechecksum(folder)
    return folder


def copy_bundle(source: Path, folder: Path) -> Path:
    """An unchanged copy, to register as another version with the same answers."""
    shutil.copytree(source, folder)
    return folder


def broken_copy(source: Path, folder: Path) -> Path:
    """A copy whose graph ONNX Runtime cannot load (checksums updated to match)."""
    shutil.copytree(source, folder)
    (folder / "model.onnx").write_bytes(b"this is not an ONNX graph")
    _rechecksum(folder)
    return folder
