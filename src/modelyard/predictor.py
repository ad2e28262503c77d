"""One object that owns an ONNX Runtime session and the shared preprocessing.

Evaluation, batch prediction, the MLflow pyfunc wrapper and (later) the server
all predict through :class:`Predictor`, so they agree to the bit.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from modelyard.bundle import INPUT_NAME, Bundle
from modelyard.errors import DataError
from modelyard.features.image import ImageSpec, decode_image, to_model_input
from modelyard.features.text import MIN_WIDTH, TextSpec, encode_texts


@dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray
    """(N, K) float32 class probabilities."""
    embedding: np.ndarray
    """(N, D) float32 penultimate activations."""
    labels: tuple[str, ...]
    truncated: np.ndarray | None = None
    """Text models: (N,) bool, the text was cut at the spec's max_chars."""
    min_confidence: float = 0.0
    """Text models: the bundle's ``min_confidence`` (see :attr:`answers`)."""
    low_confidence_label: str = "unknown"

    @property
    def predicted(self) -> np.ndarray:
        return cast("np.ndarray", self.probabilities.argmax(axis=1))

    @property
    def predicted_labels(self) -> list[str]:
        return [self.labels[i] for i in self.predicted]

    @property
    def confidence(self) -> np.ndarray:
        return cast("np.ndarray", self.probabilities.max(axis=1))

    @property
    def answers(self) -> list[str]:
        """The labels as served: below ``min_confidence``, ``low_confidence_label``."""
        return [
            label if confident >= self.min_confidence else self.low_confidence_label
            for label, confident in zip(self.predicted_labels, self.confidence, strict=True)
        ]


class Predictor:
    """Predict with a bundle through ONNX Runtime; no torch involved."""

    def __init__(self, bundle: Bundle, intra_op_threads: int | None = None, batch_size: int = 256):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        self.bundle = bundle
        self.spec = bundle.preprocessing
        self.batch_size = batch_size
        self.session = ort.InferenceSession(
            str(bundle.onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def predict_inputs(self, inputs: np.ndarray) -> Prediction:
        """Predict on already preprocessed float32 (N, C, H, W) inputs, in batches."""
        probabilities, embeddings = [], []
        for start in range(0, max(inputs.shape[0], 1), self.batch_size):
            chunk = inputs[start : start + self.batch_size]
            probs, embedding = self.session.run(["probabilities", "embedding"], {INPUT_NAME: chunk})
            probabilities.append(probs)
            embeddings.append(embedding)
        return Prediction(
            np.concatenate(probabilities), np.concatenate(embeddings), self.bundle.labels
        )

    def _check_takes(self, method: str) -> None:
        """A clear error when ``method`` is another kind's: the bundle's modality names
        the method that takes its inputs."""
        fits = self.bundle.modality.predictor_method
        if method != fits:
            kind = self.bundle.kind
            article = "an" if kind[:1] in ("a", "e", "i", "o", "u") else "a"
            raise DataError(f"{self.bundle.name} is {article} {kind} model; use {fits}")

    def predict_images(self, images: np.ndarray) -> Prediction:
        """Predict on uint8 (N, H, W, C) images at the bundle's size."""
        self._check_takes("predict_images")
        spec: ImageSpec = self.spec
        return self.predict_inputs(to_model_input(images, spec))

    def predict_files(self, files: Sequence[str | Path]) -> Prediction:
        """Decode image files with the bundle's preprocessing and predict."""
        self._check_takes("predict_images")
        spec: ImageSpec = self.spec
        images = np.stack([decode_image(Path(f), spec) for f in files])
        return self.predict_images(images)

    def predict_texts(self, texts: Sequence[str]) -> Prediction:
        """Predict on raw texts with the bundle's :class:`TextSpec` (the server's path).

        Texts are encoded and run in batches of similar length (so padding stays
        small), then put back in the order given. Empty texts are refused.
        """
        self._check_takes("predict_texts")
        spec: TextSpec = self.spec
        if isinstance(texts, str):
            raise DataError("predict_texts takes a list of texts, not one string")
        texts = list(texts)
        if not texts:
            raise DataError("no texts to predict")
        lengths = np.fromiter(map(len, texts), np.int64, len(texts))
        order = np.argsort(lengths, kind="stable")
        probabilities: list[np.ndarray] = []
        embeddings: list[np.ndarray] = []
        truncated: list[np.ndarray] = []
        for start, stop in _batches(lengths[order], spec.max_chars, self.batch_size):
            chunk = [texts[i] for i in order[start:stop]]
            encoded = encode_texts(chunk, spec)
            empty = np.flatnonzero(encoded.lengths == 0)
            if empty.size:
                index = int(order[start + empty[0]])
                raise DataError(f"text {index} is empty (or only whitespace); send some words")
            probs, embedding = self.session.run(
                ["probabilities", "embedding"], {INPUT_NAME: encoded.ids}
            )
            probabilities.append(probs)
            embeddings.append(embedding)
            truncated.append(encoded.truncated)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return Prediction(
            np.concatenate(probabilities)[inverse],
            np.concatenate(embeddings)[inverse],
            self.bundle.labels,
            truncated=np.concatenate(truncated)[inverse],
            min_confidence=spec.min_confidence,
            low_confidence_label=spec.low_confidence_label,
        )


def _batches(sorted_lengths: np.ndarray, max_chars: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each batch of length-sorted texts: at most ``size`` texts,
    and never across a padded width (:func:`~modelyard.features.text.encode_texts`
    pads a batch to a power of two over its longest text, so one long text would
    double its neighbours' padding; the embedding gather pays for every padded slot).
    """
    # The power of two a text's characters (plus two word boundaries) round up to.
    chars = np.minimum(sorted_lengths, max_chars) + 1
    widths = np.maximum(np.frexp(chars.astype(np.float64))[1], MIN_WIDTH.bit_length() - 1)
    edges = [0, *(np.flatnonzero(np.diff(widths)) + 1).tolist(), len(widths)]
    batches = []
    for first, last in itertools.pairwise(edges):
        batches += [(b, min(b + size, last)) for b in range(first, last, size)]
    return batches
