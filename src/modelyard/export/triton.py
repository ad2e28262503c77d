"""Write a bundle as a Triton Inference Server model repository, or as a bare ONNX file.

The repository layout Triton's ONNX Runtime backend expects::

    <out>/<model name>/config.pbtxt         inputs, outputs, batching, instances
    <out>/<model name>/labels.txt           class names (Triton's classification extension)
    <out>/<model name>/<version>/model.onnx the bundle's graph, unchanged
    <out>/<model name>/bundle.json          provenance and preprocessing, which Triton ignores
    <out>/<model name>/reference_profile.json

Triton serves the graph but not the preprocessing, so a client must send what
:func:`modelyard.features.image.to_model_input` produces; ``bundle.json`` beside the
config says how. Tensor shapes are read from the graph through ONNX Runtime (a base
dependency), so exporting needs neither torch nor the ``onnx`` package.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from modelyard.bundle import INPUT_NAME, MANIFEST, PROFILE_FILE, Bundle
from modelyard.choices import Choice
from modelyard.errors import BundleError, ExportError, UsageError

CONFIG_FILE = "config.pbtxt"
LABELS_FILE = "labels.txt"


class InstanceKind(Choice):
    """Where Triton runs a model instance (``instance_group.kind``)."""

    KIND_CPU = "KIND_CPU"
    KIND_GPU = "KIND_GPU"
    KIND_AUTO = "KIND_AUTO"


KINDS = tuple(InstanceKind.values())
# Triton model names become folder names and URL path segments.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_TRITON_TYPES = {
    "tensor(float)": "TYPE_FP32",
    "tensor(float16)": "TYPE_FP16",
    "tensor(double)": "TYPE_FP64",
    "tensor(int64)": "TYPE_INT64",
    "tensor(int32)": "TYPE_INT32",
    "tensor(uint8)": "TYPE_UINT8",
    "tensor(bool)": "TYPE_BOOL",
}


@dataclass(frozen=True)
class Tensor:
    """One graph input or output as Triton sees it: batch dimension left out."""

    name: str
    data_type: str
    """Triton's enum name, e.g. ``TYPE_FP32``."""
    dims: tuple[int, ...]
    """Shape after the batch dimension; -1 where the graph leaves a size open."""


@dataclass(frozen=True)
class GraphSignature:
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]

    def output(self, name: str) -> Tensor:
        return next(t for t in self.outputs if t.name == name)


def read_signature(onnx_path: Path) -> GraphSignature:
    """Names, types and per-example dims of the graph's inputs and outputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def describe(arg: Any) -> Tensor:
        if arg.type not in _TRITON_TYPES:
            raise ExportError(
                f"{onnx_path}: tensor '{arg.name}' has type {arg.type}, which the Triton "
                "export does not map; re-export the model with float32 inputs and outputs"
            )
        dims = tuple(d if isinstance(d, int) and d > 0 else -1 for d in arg.shape[1:])
        return Tensor(arg.name, _TRITON_TYPES[arg.type], dims)

    return GraphSignature(
        tuple(describe(a) for a in session.get_inputs()),
        tuple(describe(a) for a in session.get_outputs()),
    )


class _Enum(str):
    """A protobuf enum value: written bare in text format, unlike a quoted string."""


_Value = Union[str, int, bool, Sequence[int], "_Message", Sequence["_Message"]]
_Message = dict[str, _Value]


def _render(message: _Message, indent: int = 0) -> list[str]:
    """Protobuf text format for the handful of shapes a model config uses.

    Written by hand because tritonclient is no dependency of modelyard and its
    ``tritonclient.grpc.model_config_pb2`` only imports with the ``grpc`` extra; the
    tests parse this output with that very message, so the two cannot drift apart.
    """
    pad = "  " * indent
    lines: list[str] = []
    for key, value in message.items():
        if isinstance(value, dict):
            lines += [f"{pad}{key} {{", *_render(value, indent + 1), f"{pad}}}"]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{pad}{key} [")
            for i, item in enumerate(value):
                comma = "," if i < len(value) - 1 else ""
                lines += [f"{pad}  {{", *_render(item, indent + 2), f"{pad}  }}{comma}"]
            lines.append(f"{pad}]")
        elif isinstance(value, (list, tuple)):
            lines.append(f"{pad}{key}: [ {', '.join(str(int(v)) for v in value)} ]")
        elif isinstance(value, _Enum):
            lines.append(f"{pad}{key}: {value}")
        elif isinstance(value, str):
            lines.append(f"{pad}{key}: {json.dumps(value)}")
        elif isinstance(value, bool):
            lines.append(f"{pad}{key}: {str(value).lower()}")
        elif isinstance(value, int):
            lines.append(f"{pad}{key}: {value}")
        else:
            raise TypeError(f"{key}: cannot render {value!r} in a model config")
    return lines


def model_config(
    bundle: Bundle,
    signature: GraphSignature,
    *,
    max_batch_size: int,
    preferred_batch_sizes: Sequence[int],
    max_queue_delay_us: int,
    instances: int,
    kind: str,
) -> str:
    """The ``config.pbtxt`` text for ``bundle``, checked against its graph."""
    if max_batch_size < 1 or instances < 1 or max_queue_delay_us < 0:
        raise UsageError(
            "max batch size and instances must be at least 1 and the queue delay not "
            f"negative (got {max_batch_size}, {instances}, {max_queue_delay_us})"
        )
    if kind not in KINDS:
        raise UsageError(f"instance kind '{kind}' is not one of {', '.join(KINDS)}")
    refusal = bundle.modality.triton_refusal
    if refusal is not None:
        raise UsageError(f"{bundle.name} is a {bundle.kind} model: {refusal}")
    expected = bundle.preprocessing.shape
    inputs = {t.name: t for t in signature.inputs}
    if INPUT_NAME not in inputs or len(inputs) != 1:
        raise BundleError(f"{bundle.onnx_path} must have exactly one input named 'input'")
    graph_dims = inputs[INPUT_NAME].dims
    if len(graph_dims) != len(expected) or any(
        g not in (-1, e) for g, e in zip(graph_dims, expected, strict=True)
    ):
        raise BundleError(
            f"{bundle.onnx_path} takes input {graph_dims} but the bundle's preprocessing "
            f"produces {expected} (channels, height, width); the bundle is inconsistent"
        )
    # Triton refuses preferred sizes above max_batch_size; a smaller --max-batch-size
    # on the command line should just drop them rather than fail.
    preferred = sorted({b for b in preferred_batch_sizes if 1 <= b <= max_batch_size})
    outputs: list[_Message] = []
    for tensor in signature.outputs:
        entry: _Message = {
            "name": tensor.name,
            "data_type": _Enum(tensor.data_type),
            "dims": list(tensor.dims),
        }
        if tensor.name == "probabilities":
            entry["label_filename"] = LABELS_FILE
        outputs.append(entry)
    input_configs: list[_Message] = [
        {"name": INPUT_NAME, "data_type": _Enum("TYPE_FP32"), "dims": list(expected)}
    ]
    instance_groups: list[_Message] = [{"count": instances, "kind": _Enum(kind)}]
    config: _Message = {
        "name": bundle.name,
        "platform": "onnxruntime_onnx",
        "max_batch_size": max_batch_size,
        "input": input_configs,
        "output": outputs,
        "dynamic_batching": {
            "preferred_batch_size": preferred or [max_batch_size],
            "max_queue_delay_microseconds": max_queue_delay_us,
        },
        "instance_group": instance_groups,
    }
    return "\n".join(_render(config)) + "\n"


def _check_target(target: Path, overwrite: bool) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise UsageError(
            f"{target} already exists and is not empty; pass --overwrite to "
            "replace it, or choose another --out"
        )


def write_triton_repository(
    bundle: Bundle,
    out: Path,
    *,
    max_batch_size: int = 64,
    preferred_batch_sizes: Sequence[int] = (8, 16, 32),
    max_queue_delay_us: int = 2000,
    instances: int = 1,
    kind: str = "KIND_CPU",
    version: int = 1,
    overwrite: bool = False,
) -> Path:
    """Write ``bundle`` into the model repository ``out``; return the model's folder.

    Only ``out/<model name>`` is touched, so several models can share one repository;
    it is refused when it already holds files, unless ``overwrite``. The folder is built
    beside its final place and moved in at the end, so a Triton server polling the
    repository never loads half a model.
    """
    if not _SAFE_NAME.match(bundle.name):
        raise UsageError(
            f"model name '{bundle.name}' cannot be a Triton model name; use letters, "
            "digits, '_', '.' and '-'"
        )
    if version < 1:
        raise UsageError(f"Triton model versions start at 1 (got {version})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; --out must be a model repository folder")
    target = out / bundle.name
    _check_target(target, overwrite)
    signature = read_signature(bundle.onnx_path)
    config = model_config(
        bundle,
        signature,
        max_batch_size=max_batch_size,
        preferred_batch_sizes=preferred_batch_sizes,
        max_queue_delay_us=max_queue_delay_us,
        instances=instances,
        kind=kind,
    )
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=f".{bundle.name}-"))
    try:
        (staging / str(version)).mkdir()
        shutil.copyfile(bundle.onnx_path, staging / str(version) / "model.onnx")
        (staging / CONFIG_FILE).write_text(config)
        (staging / LABELS_FILE).write_text("".join(f"{label}\n" for label in bundle.labels))
        for name in (MANIFEST, PROFILE_FILE):
            shutil.copyfile(bundle.path / name, staging / name)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def write_onnx(bundle: Bundle, out: Path, *, overwrite: bool = False) -> Path:
    """Copy the bundle's graph to ``out`` (``*.onnx``) with a ``*.json`` sidecar beside it.

    The sidecar holds what the graph alone does not say: labels, preprocessing and
    tensor shapes, so a runtime other than modelyard can feed the graph correctly.
    """
    out = Path(out)
    if out.suffix != ".onnx":
        raise UsageError(f"--out must name a .onnx file (got {out})")
    sidecar = out.with_suffix(".json")
    for path in (out, sidecar):
        if path.exists() and not overwrite:
            raise UsageError(f"{path} already exists; pass --overwrite to replace it")
    signature = read_signature(bundle.onnx_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle.onnx_path, out)
    description: dict[str, Any] = {
        "name": bundle.name,
        "task": bundle.task,
        "version": bundle.version,
        "source_uri": bundle.source_uri,
        "labels": list(bundle.labels),
        "preprocessing": bundle.preprocessing.to_dict(),
        "inputs": {t.name: ["batch", *t.dims] for t in signature.inputs},
        "outputs": {t.name: ["batch", *t.dims] for t in signature.outputs},
        "metrics": bundle.metrics,
    }
    if bundle.fields.quantization is not None:
        description["quantization"] = dict(bundle.fields.quantization.record)
    sidecar.write_text(json.dumps(description, indent=2))
    return out
