"""Images: uint8 pixels in, normalised float32 N x C x H x W to the graph.

``/v1`` takes multipart uploads (any size, PNG/JPEG/...) or JSON instances (pixel
arrays or base64 files); v2 takes FP32 (already normalised, N x C x H x W) or UINT8
pixels (N x H x W[ x C]). The prediction log and the reference profile summarise
uint8 pixels, so model inputs that arrived normalised are turned back into pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import ConfigError
from modelyard.features.image import ImageSpec, conform_images, to_model_input
from modelyard.modality.base import Batch, Modality, non_finite_error
from modelyard.monitor.profile import image_summaries
from modelyard.serve.codecs import simple
from modelyard.serve.errors import ClientError, PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    from modelyard.config.schema import Config, DataConfig
    from modelyard.data.dataset import Dataset
    from modelyard.predictor import Prediction, Predictor


def from_model_input(inputs: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """Normalised float32 (N, C, H, W) back to uint8 (N, H, W, C) pixels, for summaries.

    In float32 and in place after the first product: the log thread runs this on
    every flush while holding the GIL, and float64 temporaries made it ~9x slower.
    """
    scale = np.float32(spec.std * 255.0)
    shift = np.float32(spec.mean * 255.0)
    pixels = inputs.transpose(0, 2, 3, 1) * scale  # a new array: the request's is untouched
    pixels += shift
    np.rint(pixels, out=pixels)
    np.clip(pixels, 0, 255, out=pixels)
    return pixels.astype(np.uint8)


class ImageModality(Modality[ImageSpec]):
    kind = "image"
    accepts_uploads = True
    onnx_input_kind = "image"
    predictor_method = "predict_images"
    int8_refusal = None
    triton_refusal = None

    def spec_from_dict(self, data: dict[str, Any]) -> ImageSpec:
        return ImageSpec.from_dict(data)

    def decode_tensor(
        self, name: str, array: np.ndarray, spec: ImageSpec, max_rows: int, model: str
    ) -> Batch:
        """Normalised FP32 N x C x H x W, or raw UINT8 pixels preprocessed like training."""
        if array.ndim == 0 or array.shape[0] == 0:
            raise ClientError(f"input '{name}' needs at least one row")
        if array.shape[0] > max_rows:
            raise PayloadTooLarge(
                f"{array.shape[0]} rows exceed the limit of {max_rows} per request"
            )
        if array.dtype == np.uint8:  # raw pixels (N, H, W[, C]): preprocess like training did
            try:
                return Batch(to_model_input(array, spec), array)
            except Exception as error:
                raise ClientError(f"input '{name}': {error}") from None
        if array.dtype != np.float32:
            raise ClientError(
                f"input '{name}' must be FP32 (normalised N x C x H x W) "
                "or UINT8 pixels (N x H x W x C)"
            )
        if tuple(array.shape[1:]) != spec.shape:
            raise ClientError(
                f"input '{name}' has shape {list(array.shape)}; expected {[-1, *spec.shape]}"
            )
        if not np.all(np.isfinite(array)):
            raise non_finite_error(f"input '{name}'")
        # The log summarises pixels: the log thread converts these back (same_group
        # keeps float and uint8 requests apart).
        return Batch(array, array)

    def decode_v1(
        self, body: bytes, content_type: str, spec: ImageSpec, max_rows: int, model: str
    ) -> Batch:
        if content_type and not content_type.startswith("application/json"):
            raise UnsupportedMediaType(
                f"content type '{content_type}' is not supported; upload images as "
                "multipart/form-data or send JSON instances"
            )
        images = simple.decode_instances(body, spec, max_rows)
        return Batch(to_model_input(images, spec), images)

    def decode_files(self, files: list[bytes], names: Sequence[str], spec: ImageSpec) -> Batch:
        images = simple.decode_files(files, spec, names)
        return Batch(to_model_input(images, spec), images)

    def metadata_inputs(self, spec: ImageSpec) -> list[dict[str, Any]]:
        from modelyard.bundle import INPUT_NAME

        return [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, *spec.shape]}]

    def warmup_input(self, spec: ImageSpec, rows: int) -> np.ndarray:
        return np.zeros((rows, *spec.shape), np.float32)

    def concatenate(self, observed: list[Any], spec: ImageSpec) -> np.ndarray:
        images = np.concatenate(observed)
        return images if images.dtype == np.uint8 else from_model_input(images, spec)

    def summaries(self, observed: Any) -> dict[str, np.ndarray]:
        return image_summaries(observed)

    def raw_inputs(self, observed: Any) -> list[bytes]:
        return [image.tobytes() for image in observed]

    def reference_profile(
        self,
        examples: Any,
        probabilities: np.ndarray,
        embeddings: np.ndarray,
        labels: tuple[str, ...],
    ) -> dict[str, Any]:
        from modelyard.monitor.profile import build_profile

        # Image profiles have never recorded a kind: a bundle without one is an image's.
        return build_profile(self.summaries(examples), probabilities, embeddings, labels)

    def pyfunc_examples(self, model_input: Any) -> np.ndarray:
        """uint8 images (N, H, W, C); (N, H, W) is one channel."""
        images = np.asarray(model_input, dtype=np.uint8)
        return images[..., None] if images.ndim == 3 else images

    def validate_config(self, cfg: Config) -> None:
        """Text sources and models refused; the network fits the image size."""
        from modelyard.config.schema import TEXT_MODELS, TEXT_SOURCES

        if cfg.data.source in TEXT_SOURCES or cfg.model.name in TEXT_MODELS:
            raise ConfigError(
                f"data.source={cfg.data.source} / model.name={cfg.model.name} need a text task "
                "(task.kind=text, e.g. task=langid_nordic or task=text_table)"
            )
        if not cfg.model.channels or min(cfg.model.channels) < 1:
            raise ConfigError("model.channels must be a non-empty list of positive integers")
        if 2 ** len(cfg.model.channels) > cfg.data.image_size:
            raise ConfigError(
                f"model.channels has {len(cfg.model.channels)} blocks, too many for "
                f"{cfg.data.image_size}px images; use fewer blocks or a larger data.image_size"
            )
        if cfg.data.source == "image_folder" and not cfg.data.path:
            raise ConfigError(
                "data.source=image_folder needs data.path=<folder with one sub-folder per class>"
            )

    def input_spec(self, cfg: Config) -> ImageSpec:
        from modelyard.data import image_spec

        return image_spec(cfg.data)

    def load_dataset(self, data: DataConfig) -> Dataset:
        from modelyard.data import load_dataset

        return load_dataset(data)

    def model_inputs(self, examples: Any, spec: ImageSpec) -> np.ndarray:
        return to_model_input(conform_images(examples, spec), spec)

    def predict(self, predictor: Predictor, examples: Any) -> Prediction:
        spec = predictor.spec
        assert isinstance(spec, ImageSpec)  # the predictor's bundle is of this kind
        return predictor.predict_images(conform_images(examples, spec))
