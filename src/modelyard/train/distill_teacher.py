"""The teacher of ``modelyard distill``: a registered bundle's logits through ONNX Runtime.

Any bundle can teach, whatever trained it, because only its ONNX graph is run. The
student's batch (after augmentation) is turned into the teacher's input: the same
tensor when both preprocessing specs agree; for images of another size, channel
count or normalisation, the pixels are recovered and preprocessed the teacher's way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from modelyard import bundle as bundles
from modelyard.bundle import INPUT_NAME, MANIFEST, Bundle, file_sha256
from modelyard.errors import ConfigError, ModelyardError, UsageError
from modelyard.features.image import ImageSpec
from modelyard.modality import InputSpec

LUMA = (0.299, 0.587, 0.114)
"""ITU-R 601-2 weights: how PIL's ``convert("L")`` (the server's decoding) greys RGB."""


def load_teacher_bundle(uri: str, tracking_uri: str | None) -> Bundle:
    """The teacher's bundle, or a one-line error saying which ``teacher=`` failed."""
    if not uri:
        raise UsageError(
            "distill needs a teacher: teacher=<name>@<alias>, models:/<name>/<version> "
            "or a bundle folder"
        )
    try:
        return bundles.load(uri, tracking_uri)
    except ModelyardError as error:
        raise UsageError(f"teacher={uri} does not resolve to a bundle: {error}") from None


def check_labels(teacher: Bundle, class_names: tuple[str, ...]) -> None:
    """Refuse a teacher whose classes (or their order) differ from the task's: its
    logits would teach the wrong class at each position."""
    if tuple(teacher.labels) != tuple(class_names):
        raise ConfigError(
            f"teacher {teacher.name} has labels {list(teacher.labels)} but the task has "
            f"{list(class_names)}; distill from a teacher trained on the same classes"
        )


def _image_adapter(student: ImageSpec, teacher: ImageSpec) -> Any:
    """Student input (normalised N, C, H, W) -> the teacher's, as its server would see
    the same pixels."""

    def adapt(x: torch.Tensor) -> torch.Tensor:
        pixels = x * student.std + student.mean  # back to 0..1
        if student.channels == 3 and teacher.channels == 1:
            weights = torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)
            pixels = (pixels * weights).sum(dim=1, keepdim=True)
        elif student.channels == 1 and teacher.channels == 3:
            pixels = pixels.expand(-1, 3, -1, -1)
        if (student.height, student.width) != (teacher.height, teacher.width):
            pixels = F.interpolate(
                pixels,
                size=(teacher.height, teacher.width),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        return (pixels - teacher.mean) / teacher.std

    return adapt


_ADAPTERS: dict[str, Callable[[Any, Any], Any]] = {"image": _image_adapter}
"""Kinds whose inputs can be converted from one preprocessing spec to another (torch
code, so it lives here rather than in the torch-free modality)."""


def input_adapter(student: InputSpec, teacher: Bundle) -> Any:
    """A function from the student's batch to the teacher graph's input; refuses a pair
    of specs no function can bridge (text vocabularies, different kinds)."""
    spec = teacher.preprocessing
    if spec == student:
        return lambda x: x
    convert = _ADAPTERS.get(teacher.kind) if type(spec) is type(student) else None
    if convert is not None:
        return convert(student, spec)
    raise ConfigError(
        f"teacher {teacher.name} takes {teacher.kind} input preprocessed as {spec.to_dict()}, "
        f"the student {student.to_dict()}; a non-image teacher must share the student's "
        "preprocessing exactly"
    )


@dataclass(frozen=True)
class TeacherRecord:
    """Which teacher taught: recorded in the run (params, tags) and the student's bundle."""

    uri: str
    name: str
    version: str | None
    bundle_sha256: str
    """sha256 of the teacher's bundle.json, which pins its model.onnx by checksum."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "name": self.name,
            "version": self.version,
            "bundle_sha256": self.bundle_sha256,
        }


class Teacher:
    """Logits of a bundle's ONNX graph for the student's batches, on the CPU."""

    def __init__(self, teacher: Bundle, student_spec: InputSpec, threads: int = 0):
        import onnxruntime as ort

        self.record = TeacherRecord(
            uri=teacher.source_uri,
            name=teacher.name,
            version=teacher.version,
            bundle_sha256=file_sha256(teacher.path / MANIFEST),
        )
        self._adapt = input_adapter(student_spec, teacher)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # torch and ORT take turns in one process: spinning ORT threads would only
        # steal the cores torch's next step needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(teacher.onnx_path), options, providers=["CPUExecutionProvider"]
        )
        outputs = {o.name for o in self.session.get_outputs()}
        if "logits" in outputs:
            self._output, self._from_probabilities = "logits", False
        elif "probabilities" in outputs:
            self._output, self._from_probabilities = "probabilities", True
        else:
            raise ConfigError(
                f"teacher {teacher.name}'s graph outputs {sorted(outputs)}, neither logits "
                "nor probabilities; it cannot teach"
            )

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for the student's batch ``x``, on ``x``'s device.

        A graph that outputs only probabilities gives their log: the softmax of a
        log-softmax is the same distribution, which is all the loss uses.
        """
        inputs = self._adapt(x.detach().cpu())
        array = np.ascontiguousarray(inputs.numpy())
        (out,) = self.session.run([self._output], {INPUT_NAME: array})
        result = torch.from_numpy(cast("np.ndarray", out)).float()
        if self._from_probabilities:
            result = torch.log(result.clamp_min(1e-12))
        return result.to(x.device)
