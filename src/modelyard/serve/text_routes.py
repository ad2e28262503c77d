"""HTTP handling specific to text models: ``/v1`` predict with JSON texts, v2 BYTES
input, and the metadata that advertises it. :mod:`modelyard.serve.routes` hands text
bundles' requests here; the encoding is the bundle's own :class:`TextSpec`, applied
by :func:`~modelyard.features.text.encode_texts` exactly as offline prediction does.
"""

from __future__ import annotations

import time

import numpy as np
from starlette.datastructures import State
from starlette.responses import JSONResponse, Response

from modelyard.bundle import INPUT_NAME
from modelyard.features.text import EncodedTexts, TextSpec, encode_texts
from modelyard.serve.codecs import text as text_codec
from modelyard.serve.codecs import v2
from modelyard.serve.errors import ClientError, UnsupportedMediaType
from modelyard.serve.runtime import LoadedModel


def _spec(model: LoadedModel) -> TextSpec:
    spec = model.bundle.preprocessing
    assert isinstance(spec, TextSpec)
    return spec


def encode_request_texts(texts: list[str], model: LoadedModel) -> EncodedTexts:
    """The model input for checked texts; a text that normalises to nothing (control
    characters only, say) is refused like an empty one."""
    encoded = encode_texts(texts, _spec(model))
    empty = np.flatnonzero(encoded.lengths == 0)
    if empty.size:
        raise ClientError(f"text {int(empty[0])} has no characters left after normalisation")
    return encoded


def text_v2_input(
    parsed: v2.InferRequest, model: LoadedModel, max_rows: int
) -> tuple[np.ndarray, list[str]]:
    """n-gram ids (and the texts) from a v2 request whose one input is a BYTES tensor."""
    if len(parsed.inputs) != 1:
        raise ClientError(
            f"send exactly one input tensor ('{INPUT_NAME}', BYTES); got {len(parsed.inputs)}"
        )
    name, tensor = next(iter(parsed.inputs.items()))
    if tensor.dtype != object:
        raise ClientError(f"input '{name}' must be BYTES (the texts) for text model {model.name}")
    if tensor.ndim not in (1, 2) or (tensor.ndim == 2 and tensor.shape[1] != 1):
        raise ClientError(f"input '{name}' must have shape [N] or [N, 1]; got {list(tensor.shape)}")
    texts = text_codec.texts_from_tensor(list(tensor.reshape(-1)), f"input '{name}'", max_rows)
    return encode_request_texts(texts, model).ids, texts


async def answer_text(
    state: State,
    model: LoadedModel,
    content_type: str,
    body: bytes,
    request_id: str,
    started: float,
) -> tuple[bytes, dict[str, str]]:
    """``{"text": ...}`` / ``{"texts": [...]}`` -> label, probabilities, truncated."""
    if content_type and not content_type.startswith("application/json"):
        raise UnsupportedMediaType(
            f"content type '{content_type}' is not supported for text model {model.name}; "
            'send application/json {"text": "..."} or {"texts": [...]}'
        )
    texts = text_codec.decode_text_request(body, state.settings.max_instances)
    encoded = encode_request_texts(texts, model)
    served, outputs = await state.runtime.infer(encoded.ids)
    state.monitor.observe_texts(served, request_id, texts, outputs, time.perf_counter() - started)
    answer = text_codec.encode_text_predictions(
        outputs["probabilities"],
        served.bundle.labels,
        served.name,
        served.version,
        request_id,
        encoded.truncated,
        _spec(served).max_chars,
    )
    return answer, {"content-type": "application/json", "x-request-id": request_id}


def text_metadata(model: LoadedModel) -> Response:
    """v2 model metadata: the input is a BYTES tensor of texts, not the graph's ids."""
    outputs = [
        {"name": o.name, "datatype": "FP32", "shape": [-1, *o.shape[1:]]}
        for o in model.session.get_outputs()  # type: ignore[attr-defined]
    ]
    spec = _spec(model)
    return JSONResponse(
        {
            "name": model.name,
            "versions": [model.version],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}],
            "outputs": outputs,
            "parameters": {
                "labels": list(model.bundle.labels),
                "task": model.bundle.task,
                "kind": "text",
                "max_chars": spec.max_chars,
                "preprocessing": spec.to_dict(),
                **model.provenance,
            },
        }
    )
