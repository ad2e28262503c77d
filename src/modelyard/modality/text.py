"""Texts: strings in, hashed character n-gram ids (int64 N x L) to the graph.

``/v1`` takes ``{"text": ...}`` or ``{"texts": [...]}`` and answers whether each text
was cut at ``max_chars``; v2 takes a BYTES tensor of the texts. Answers below the
served ``min_confidence`` (the bundle's, or the ``min_confidence=`` serve setting's,
see :func:`served_spec`) are labelled ``low_confidence_label``; a request may send
its own threshold (``/v1``: ``"min_confidence"``; v2: ``parameters.min_confidence``,
which adds a ``label`` BYTES output, see :meth:`TextModality.v2_labels`). The encoding is the
bundle's own :class:`TextSpec`, applied by :func:`~modelyard.features.text.encode_texts`
exactly as offline prediction does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modelyard.errors import ConfigError
from modelyard.features.text import EncodedTexts, TextSpec, encode_texts
from modelyard.modality.base import AnswerRule, Batch, Modality, TrackedSplit
from modelyard.monitor.summaries import text_summaries
from modelyard.serve.codecs import text as text_codec
from modelyard.serve.errors import ClientError, UnsupportedMediaType

if TYPE_CHECKING:
    from modelyard.config.schema import Config, DataConfig
    from modelyard.data.text import TextDataset
    from modelyard.predictor import Prediction, Predictor


def encode_request_texts(texts: list[str], spec: TextSpec) -> EncodedTexts:
    """The model input for checked texts; a text that normalises to nothing (control
    characters only, say) is refused like an empty one."""
    encoded = encode_texts(texts, spec)
    empty = np.flatnonzero(encoded.lengths == 0)
    if empty.size:
        raise ClientError(f"text {int(empty[0])} has no characters left after normalisation")
    return encoded


UNKNOWN = "unknown"
"""The one low-confidence label that need not be a class of the model."""


@dataclass(frozen=True)
class TextNotes:
    """What a text ``/v1`` answer needs besides the probabilities."""

    truncated: np.ndarray
    """bool [N]: the text was cut at max_chars."""
    min_confidence: float | None = None
    """The request's own threshold; None: the served one."""


def served_spec(
    spec: Any,
    kind: str,
    labels: tuple[str, ...],
    name: str,
    min_confidence: float | None,
    low_confidence_label: str,
) -> Any:
    """The spec a server answers with: the bundle's, with the ``min_confidence`` and
    ``low_confidence_label`` serve settings (None / empty: the bundle's own) in place.

    Refused with a one-line :class:`ConfigError` for a model that is not a text model,
    a threshold outside [0, 1), or a label that is neither a class nor ``unknown``.
    """
    if min_confidence is None and not low_confidence_label:
        return spec
    given = " ".join(
        f"{key}={value}"
        for key, value in (
            ("min_confidence", min_confidence),
            ("low_confidence_label", low_confidence_label),
        )
        if value not in (None, "")
    )
    if kind != "text" or not isinstance(spec, TextSpec):
        raise ConfigError(
            f"{given}: only text models answer with a confidence threshold; {name} is "
            f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind} model (drop the setting)"
        )
    if min_confidence is not None and not 0.0 <= min_confidence < 1.0:
        raise ConfigError(f"bad serve setting min_confidence={min_confidence}: must be in [0, 1)")
    if low_confidence_label and low_confidence_label not in (*labels, UNKNOWN):
        raise ConfigError(
            f"bad serve setting low_confidence_label={low_confidence_label}: {name} has no "
            f"such class; use {UNKNOWN} or one of {', '.join(labels)}"
        )
    return replace(
        spec,
        min_confidence=spec.min_confidence if min_confidence is None else min_confidence,
        low_confidence_label=low_confidence_label or spec.low_confidence_label,
    )


class TextModality(Modality[TextSpec]):
    kind = "text"
    v2_datatype = "BYTES"
    onnx_input_kind = "text_ngram_ids"
    onnx_input_axes: ClassVar[dict[int, str] | None] = {0: "batch", 1: "ngrams"}
    thresholded = True
    predictor_method = "predict_texts"
    refits = True
    weighs_labels = True
    int8_refusal = (
        "INT8 quantization is measured for image models only (a text model's cost is its "
        "embedding gather, which INT8 does not speed up)"
    )
    triton_refusal = (
        "Triton would receive n-gram ids, not texts, and cannot apply the text "
        "preprocessing; serve it with `modelyard serve`"
    )

    def spec_from_dict(self, data: dict[str, Any]) -> TextSpec:
        return TextSpec.from_dict(data)

    def decode_tensor(
        self, name: str, array: np.ndarray, spec: TextSpec, max_rows: int, model: str
    ) -> Batch:
        """n-gram ids (and the texts) from a BYTES tensor of shape [N] or [N, 1]."""
        if array.dtype != object:
            raise ClientError(f"input '{name}' must be BYTES (the texts) for text model {model}")
        if array.ndim not in (1, 2) or (array.ndim == 2 and array.shape[1] != 1):
            raise ClientError(
                f"input '{name}' must have shape [N] or [N, 1]; got {list(array.shape)}"
            )
        texts = text_codec.texts_from_tensor(list(array.reshape(-1)), f"input '{name}'", max_rows)
        encoded = encode_request_texts(texts, spec)
        return Batch(encoded.ids, texts, TextNotes(encoded.truncated))

    def decode_v1(
        self, body: bytes, content_type: str, spec: TextSpec, max_rows: int, model: str
    ) -> Batch:
        if content_type and not content_type.startswith("application/json"):
            raise UnsupportedMediaType(
                f"content type '{content_type}' is not supported for text model {model}; "
                'send application/json {"text": "..."} or {"texts": [...]}'
            )
        request = text_codec.decode_text_body(body, max_rows)
        encoded = encode_request_texts(request.texts, spec)
        return Batch(
            encoded.ids, request.texts, TextNotes(encoded.truncated, request.min_confidence)
        )

    def encode_v1(
        self,
        batch: Batch,
        probabilities: np.ndarray,
        labels: tuple[str, ...],
        model: str,
        version: str,
        request_id: str,
        spec: TextSpec,
    ) -> bytes:
        notes: TextNotes = batch.notes
        return text_codec.encode_text_predictions(
            probabilities,
            labels,
            model,
            version,
            request_id,
            notes.truncated,
            spec.max_chars,
            spec.min_confidence if notes.min_confidence is None else notes.min_confidence,
            spec.low_confidence_label,
        )

    def metadata_inputs(self, spec: TextSpec) -> list[dict[str, Any]]:
        """The input is a BYTES tensor of texts, not the graph's ids."""
        from modelyard.bundle import INPUT_NAME

        return [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}]

    def metadata_outputs(self, outputs: Any) -> list[dict[str, Any]]:
        return [{"name": o.name, "datatype": "FP32", "shape": [-1, *o.shape[1:]]} for o in outputs]

    def metadata_parameters(self, spec: TextSpec) -> dict[str, Any]:
        return {"max_chars": spec.max_chars, "preprocessing": spec.to_dict()}

    def v2_label_threshold(self, parameters: dict[str, Any], spec: TextSpec) -> float | None:
        """A v2 request's ``parameters.min_confidence`` (checked), None when absent."""
        value = parameters.get("min_confidence")
        if value is None:
            return None
        return text_codec.check_min_confidence(value, "parameters.min_confidence")

    def v2_labels(
        self, threshold: float, probabilities: np.ndarray, labels: tuple[str, ...], spec: TextSpec
    ) -> np.ndarray:
        """The served labels, a BYTES output for a v2 request that sent
        ``parameters.min_confidence`` (``threshold``)."""
        best = probabilities.argmax(axis=1)
        confident = probabilities[np.arange(len(best)), best] >= threshold
        answers = np.empty(len(best), dtype=object)
        answers[:] = [
            labels[i] if ok else spec.low_confidence_label
            for i, ok in zip(best, confident, strict=True)
        ]
        return answers

    def answer_rule(
        self, batch: Batch, spec: TextSpec, requested: float | None = None
    ) -> AnswerRule | None:
        """The threshold the answers were served under (the v2 request's, the /v1
        request's own, else the served one) and the low-confidence label."""
        threshold = requested
        if threshold is None:
            threshold = batch.notes.min_confidence
            if threshold is None:
                threshold = spec.min_confidence
        if threshold <= 0:
            return None
        return AnswerRule(threshold, spec.low_confidence_label)

    def warmup_input(self, spec: TextSpec, rows: int) -> np.ndarray:
        return encode_texts(["warm up"] * rows, spec).ids

    def concatenate(self, observed: list[Any], spec: TextSpec) -> list[str]:
        return [text for texts in observed for text in texts]

    def summaries(self, observed: Any) -> dict[str, np.ndarray]:
        return text_summaries(list(observed))

    def raw_inputs(self, observed: Any) -> list[bytes]:
        return [text.encode() for text in observed]

    def validate_config(self, cfg: Config) -> None:
        """A text source and model, and the n-gram, model and threshold settings in range
        (the image size and channel checks do not apply)."""
        from modelyard.config.schema import TEXT_MODELS, TEXT_SOURCES

        if cfg.data.source not in TEXT_SOURCES:
            raise ConfigError(
                f"task.kind=text needs a text data.source ({', '.join(TEXT_SOURCES)}), "
                f"got {cfg.data.source}"
            )
        if cfg.model.name not in TEXT_MODELS:
            raise ConfigError(
                f"task.kind=text needs a text model ({', '.join(TEXT_MODELS)}), "
                f"got {cfg.model.name}"
            )
        if cfg.data.source == "table" and not cfg.data.path:
            raise ConfigError("data.source=table needs data.path=<CSV, TSV, JSONL or Parquet file>")
        if cfg.data.source == "conllu" and not cfg.data.files:
            raise ConfigError("data.source=conllu needs data.files (CoNLL-U file name -> label)")
        text = cfg.text
        if not 1 <= text.ngram_min <= text.ngram_max <= 8:
            raise ConfigError(
                f"need 1 <= text.ngram_min <= text.ngram_max <= 8, got "
                f"{text.ngram_min}..{text.ngram_max}"
            )
        for dotted, value in (
            ("text.buckets", text.buckets),
            ("text.max_chars", text.max_chars),
            ("model.embedding_dim", cfg.model.embedding_dim),
        ):
            if value < 1:
                raise ConfigError(f"{dotted} must be at least 1, got {value}")
        if not 0.0 <= cfg.train.punctuation_dropout <= 1.0:
            raise ConfigError(
                f"train.punctuation_dropout must be in [0, 1], got {cfg.train.punctuation_dropout}"
            )
        if cfg.data.word_list_sentences < 0:
            raise ConfigError(
                f"data.word_list_sentences must be at least 0, got {cfg.data.word_list_sentences}"
            )
        if not 0.0 <= text.min_confidence < 1.0:
            raise ConfigError(f"text.min_confidence must be in [0, 1), got {text.min_confidence}")
        if not text.low_confidence_label.strip():
            raise ConfigError("text.low_confidence_label is empty; use e.g. unknown or other")
        if not 0.0 <= cfg.model.ngram_dropout < 1.0:
            raise ConfigError(
                f"model.ngram_dropout must be in [0, 1), got {cfg.model.ngram_dropout}"
            )
        if cfg.model.hidden < 0 or not 0.0 <= cfg.model.dropout < 1.0:
            raise ConfigError(
                "model.hidden must be >= 0 (0: no hidden layer), 0 <= model.dropout < 1"
            )

    def input_spec(self, cfg: Config) -> TextSpec:
        # ``text.*`` is the bundle's TextSpec as configured: the same fields, so a new
        # one is added in both places and copied here without a third list to extend.
        return TextSpec(**asdict(cfg.text))

    def load_dataset(self, data: DataConfig) -> TextDataset:
        from modelyard.data import load_text_dataset

        return load_text_dataset(data)

    def model_inputs(self, examples: Any, spec: TextSpec) -> np.ndarray:
        """n-gram ids, padded to the batch's longest text."""
        return encode_texts([str(text) for text in examples], spec).ids

    def predict(self, predictor: Predictor, examples: Any) -> Prediction:
        return predictor.predict_texts([str(text) for text in examples])

    def tracked_split(self, split: Any, class_names: tuple[str, ...]) -> TrackedSplit:
        """A table: each text, its label's name and its source (file or genre)."""
        names = np.empty(len(split.labels), dtype=object)
        names[:] = [class_names[i] for i in split.labels]
        columns = {"text": split.texts, "label": names, "source": split.groups}
        return TrackedSplit(columns, split.labels)

    def pyfunc_examples(self, model_input: Any) -> list[str]:
        """A 1-d array of strings (the logged signature), or a one-column DataFrame."""
        if hasattr(model_input, "iloc"):  # a pandas DataFrame or Series
            model_input = np.asarray(model_input).reshape(-1)
        return [str(text) for text in model_input]

    def signature_examples(self, examples: Any) -> np.ndarray:
        return np.asarray(examples).astype(str)

    def evaluation_texts(self, examples: Any) -> list[str]:
        return [str(text) for text in examples]
