"""What every input kind (modality) provides, so the rest of modelyard never asks
"image or text?".

One :class:`Modality` object per kind is chosen once, from a bundle's ``kind`` or a
task's ``task.kind`` (:func:`modelyard.modality.modality_for`). It owns everything
that differs between kinds:

* the input spec stored in the bundle (``spec_from_dict``);
* requests: decoding a ``/v1`` JSON body or a v2 tensor into a :class:`Batch`, the
  ``/v1`` answer, and the v2 metadata that advertises the input;
* the warm-up input a fresh ONNX session runs;
* monitoring: per-input summaries (the prediction log and the reference profile
  share them, so served traffic and training data compare like with like);
* data: loading a task's dataset, its examples, and their model input.

Serving needs nothing here that imports torch, MLflow or HTTP libraries; data loading
imports its own modules when called.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

import numpy as np

from modelyard.bundle import INPUT_NAME
from modelyard.serve.errors import ClientError, UnsupportedMediaType

if TYPE_CHECKING:
    from modelyard.config.schema import Config, DataConfig
    from modelyard.data.dataset import LabelledDataset
    from modelyard.predictor import Prediction, Predictor
    from modelyard.serve.codecs.v2 import InferRequest


class InputSpec(Protocol):
    """A kind's preprocessing spec: frozen, and stored in ``bundle.json`` by ``to_dict``."""

    def to_dict(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=InputSpec)


def non_finite_error(where: str) -> ClientError:
    """The error for inputs with NaN or Inf, ``where`` naming them. A finite number past
    the tensor's type (1e39 sent as FP32) is read as Inf, so the message says that too:
    a client who sent no Inf would otherwise be told it did."""
    return ClientError(
        f"{where} holds NaN or Inf, or a number too large for its datatype "
        "(beyond about 3.4e38 for FP32, which reads as Inf); send finite numbers"
    )


@dataclass(slots=True)  # not frozen: built per request, and frozen init costs ~1 us
class Batch:
    """One request's inputs after decoding.

    ``model_input`` goes to the ONNX graph; ``observed`` is what the prediction log
    summarises (uint8 images, the texts, the feature rows), in the form
    :meth:`Modality.summaries` takes; ``notes`` is whatever the kind's own ``/v1``
    answer needs besides the probabilities (text: which texts were cut).
    """

    model_input: np.ndarray
    observed: Any
    notes: Any = None

    def __len__(self) -> int:
        return len(self.observed)


class AnswerRule(NamedTuple):
    """How a request's answers were labelled: one whose top probability is below
    ``threshold`` was served ``label`` instead of its top class (text models'
    ``min_confidence`` and ``low_confidence_label``)."""

    threshold: float
    label: str

    def served(self, top: str, confidence: float) -> str:
        """The label served for an answer of class ``top`` at ``confidence`` (NaN:
        not confident, as the answer itself says)."""
        return top if confidence >= self.threshold else self.label


@dataclass(frozen=True)
class Examples:
    """One split of a dataset as the kind's raw examples (what :meth:`Modality.predict`
    and :meth:`Modality.model_inputs` take), with labels."""

    examples: Any
    labels: np.ndarray


@dataclass(frozen=True)
class TrackedSplit:
    """A split as MLflow logs it: ``features`` (an array) with the labels as
    ``targets``; or, for kinds whose examples read better as a table, ``features`` is
    named columns that hold the labels too (``targets`` is then not logged)."""

    features: np.ndarray | dict[str, np.ndarray]
    targets: np.ndarray


class Modality(ABC, Generic[S]):
    """An input kind. Subclasses are stateless; one instance per kind is shared."""

    kind: ClassVar[str]
    """The ``kind`` written in ``bundle.json`` and ``task.kind``."""
    v2_datatype: ClassVar[str] = "FP32"
    """The v2 datatype clients send (named in errors and the metadata)."""
    accepts_uploads: ClassVar[bool] = False
    """Whether ``/v1`` predict takes multipart file uploads (:meth:`decode_files`)."""
    onnx_input_kind: ClassVar[str]
    """What the graph's input holds, recorded in ``bundle.json`` (``onnx.input_kind``)."""
    onnx_input_axes: ClassVar[dict[int, str] | None] = None
    """Dynamic axes of the graph's input beyond the batch, for the ONNX export."""
    predictor_method: ClassVar[str] = "predict_inputs"
    """The :class:`~modelyard.predictor.Predictor` method that takes this kind's raw
    inputs (named in the error when another kind's method is called)."""
    refits: ClassVar[bool] = False
    """Whether ``train.refit`` (a second fit on every labelled example) is built for
    this kind's training."""
    weighs_labels: ClassVar[bool] = False
    """Whether this kind's training takes ``data.label_weights`` (a loss multiplier
    per label); elsewhere a non-empty setting is refused rather than ignored."""
    int8_refusal: ClassVar[str | None] = "INT8 quantization is not measured for this kind"
    """Why ``export quantize`` refuses this kind; None: it quantizes, calibrating on and
    comparing over the task's examples through :meth:`model_inputs`."""
    thresholded: ClassVar[bool] = False
    """Whether an answer may be served another label than its top class
    (:meth:`answer_rule`): the server then counts served labels per request, where
    the request's own threshold is known, rather than per batch."""
    triton_refusal: ClassVar[str | None] = (
        "modelyard writes no Triton config for this kind; serve it with `modelyard serve`"
    )
    """Why ``export triton`` refuses this kind; None: Triton can be sent the graph's own
    input, so the exported model repository serves it."""

    # -- the spec -------------------------------------------------------------------

    @abstractmethod
    def spec_from_dict(self, data: dict[str, Any]) -> S:
        """The spec ``bundle.json`` stores under ``preprocessing``."""

    # -- requests -------------------------------------------------------------------

    def decode_v2(self, request: InferRequest, spec: S, max_rows: int, model: str) -> Batch:
        """The one input tensor of a v2 request, checked and made model input."""
        if len(request.inputs) != 1:
            datatype = "" if self.v2_datatype == "FP32" else f", {self.v2_datatype}"
            raise ClientError(
                f"send exactly one input tensor ('{INPUT_NAME}'{datatype}); "
                f"got {len(request.inputs)}"
            )
        name, array = next(iter(request.inputs.items()))
        return self.decode_tensor(name, array, spec, max_rows, model)

    @abstractmethod
    def decode_tensor(
        self, name: str, array: np.ndarray, spec: S, max_rows: int, model: str
    ) -> Batch:
        """A decoded v2 tensor -> a batch; :class:`ClientError` names what is wrong."""

    @abstractmethod
    def decode_v1(
        self, body: bytes, content_type: str, spec: S, max_rows: int, model: str
    ) -> Batch:
        """A ``/v1`` predict body (JSON) -> a batch."""

    def decode_files(self, files: list[bytes], names: Sequence[str], spec: S) -> Batch:
        """Uploaded files (multipart ``/v1`` predict) -> a batch, for kinds that take them."""
        raise UnsupportedMediaType(f"{self.kind} models take no file uploads; send JSON")

    def encode_v1(
        self,
        batch: Batch,
        probabilities: np.ndarray,
        labels: tuple[str, ...],
        model: str,
        version: str,
        request_id: str,
        spec: S,
    ) -> bytes:
        """The ``/v1`` answer (JSON bytes): one prediction per input. Kinds whose answer
        needs more than the probabilities (text: which inputs were cut) override it."""
        from modelyard.serve.codecs import simple

        return simple.encode_predictions(probabilities, labels, model, version, request_id)

    @abstractmethod
    def metadata_inputs(self, spec: S) -> list[dict[str, Any]]:
        """The v2 metadata's ``inputs``: what a client sends, not the graph's own input."""

    def metadata_outputs(self, outputs: Sequence[Any]) -> list[dict[str, Any]]:
        """The v2 metadata's ``outputs`` from the session's output descriptions."""
        return [
            {
                "name": o.name,
                "datatype": "FP32",
                "shape": [-1 if not isinstance(d, int) else d for d in o.shape],
            }
            for o in outputs
        ]

    def metadata_parameters(self, spec: S) -> dict[str, Any]:
        """Kind-specific entries of the v2 metadata's ``parameters``."""
        return {}

    def v2_label_threshold(self, parameters: dict[str, Any], spec: S) -> float | None:
        """A v2 request's ``parameters.min_confidence``, for kinds that answer labels
        under a confidence threshold (text); None when absent. Other kinds refuse it."""
        if parameters.get("min_confidence") is None:
            return None
        raise ClientError(
            "parameters.min_confidence applies to text models only; this model answers "
            "probabilities (drop the parameter)"
        )

    def v2_labels(
        self, threshold: float, probabilities: np.ndarray, labels: tuple[str, ...], spec: S
    ) -> np.ndarray:
        """The served labels under ``threshold`` (a BYTES ``label`` output); only called
        when :meth:`v2_label_threshold` gave one."""
        raise NotImplementedError(f"{self.kind} models answer no thresholded labels")

    def answer_rule(
        self, batch: Batch, spec: S, requested: float | None = None
    ) -> AnswerRule | None:
        """The rule ``batch``'s answers were served under, for the prediction log and
        the per-class counter: ``requested`` (a v2 ``parameters.min_confidence``), else
        the request's own threshold, else the served one. None when every answer is
        its top class: kinds without a threshold (this default: nothing to pay), and a
        threshold of 0."""
        return None

    @abstractmethod
    def warmup_input(self, spec: S, rows: int) -> np.ndarray:
        """``rows`` valid model inputs, for warming up and smoke-testing a session."""

    # -- monitoring -----------------------------------------------------------------

    def same_group(self, a: Any, b: Any) -> bool:
        """Whether two requests' ``observed`` inputs can be summarised as one batch."""
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return bool(a.dtype == b.dtype and a.shape[1:] == b.shape[1:])
        return type(a) is type(b)

    @abstractmethod
    def concatenate(self, observed: list[Any], spec: S) -> Any:
        """Several requests' ``observed`` inputs (one group) as one."""

    @abstractmethod
    def summaries(self, observed: Any) -> dict[str, np.ndarray]:
        """Per-input statistics for the prediction log and the reference profile."""

    @abstractmethod
    def raw_inputs(self, observed: Any) -> list[bytes]:
        """Each input as bytes, for a log that keeps raw inputs."""

    def reference_profile(
        self,
        examples: Any,
        probabilities: np.ndarray,
        embeddings: np.ndarray,
        labels: tuple[str, ...],
    ) -> dict[str, Any]:
        """The bundle's reference profile from (already sampled) training examples."""
        from modelyard.monitor.profile import build_profile

        return build_profile(
            self.summaries(examples), probabilities, embeddings, labels, kind=self.kind
        )

    # -- data -----------------------------------------------------------------------

    def validate_config(self, cfg: Config) -> None:
        """The config checks of this kind's tasks, after the checks every kind shares
        (:func:`modelyard.config.schema.validate`); :class:`ConfigError` names the key."""

    @abstractmethod
    def input_spec(self, cfg: Config) -> S:
        """The spec a task's config implies (training writes it into the bundle)."""

    @abstractmethod
    def load_dataset(self, data: DataConfig) -> LabelledDataset[Any]:
        """The task's dataset: train, val and test splits of this kind's split type,
        each with ``examples`` and ``labels``."""

    def split_examples(self, dataset: LabelledDataset[Any], split: str) -> Examples:
        """One split of :meth:`load_dataset`'s dataset as raw examples and labels."""
        part = dataset.split(split)
        return Examples(part.examples, part.labels)

    @abstractmethod
    def model_inputs(self, examples: Any, spec: S) -> np.ndarray:
        """Raw examples as one batch of model input (for export, parity, latency)."""

    @abstractmethod
    def predict(self, predictor: Predictor, examples: Any) -> Prediction:
        """Predict raw examples through the predictor's bundle."""

    def tracked_split(self, split: Any, class_names: tuple[str, ...]) -> TrackedSplit:
        """One split of :meth:`load_dataset`'s dataset as the training run logs it (an
        MLflow dataset input): by default its examples, with the labels as targets."""
        return TrackedSplit(split.examples, split.labels)

    def pyfunc_examples(self, model_input: Any) -> Any:
        """What MLflow's pyfunc ``predict`` was given, as this kind's raw examples."""
        return np.asarray(model_input)

    def signature_examples(self, examples: Any) -> np.ndarray:
        """A few examples as the MLflow model's logged input example and signature."""
        return np.asarray(examples)

    def evaluation_texts(self, examples: Any) -> list[str] | None:
        """The examples as texts, for reports that show them (text kinds only)."""
        return None
