"""HTTP handlers only: parse the request, call the runtime, encode the answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

import numpy as np
from starlette.datastructures import State, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modelyard import __version__
from modelyard.bundle import INPUT_NAME
from modelyard.features.image import to_model_input
from modelyard.serve.codecs import simple, v2
from modelyard.serve.errors import ClientError, NotFound, PayloadTooLarge, UnsupportedMediaType
from modelyard.serve.runtime import LoadedModel, ModelRuntime


def _runtime(request: Request) -> ModelRuntime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def error_response(error: ClientError) -> Response:
    headers = {"retry-after": "1"} if error.status in (429, 503) else None
    return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)


def _model(request: Request) -> LoadedModel:
    """The loaded model the path names (404 for any other name or version)."""
    return _named_model(_runtime(request), request.path_params)


def _named_model(runtime: ModelRuntime, path_params: Mapping[str, str]) -> LoadedModel:
    model = runtime.current
    name = path_params["name"]
    if model is None:
        raise ClientError("the model is not loaded yet; retry shortly", 503)
    if name != model.name:
        raise NotFound(f"model '{name}' is not served here; this server serves '{model.name}'")
    version = path_params.get("version")
    if version is not None and version != model.version:
        raise NotFound(f"version {version} of '{name}' is not loaded; loaded: {model.version}")
    return model


async def live(request: Request) -> Response:
    return JSONResponse({"live": True})


async def ready(request: Request) -> Response:
    is_ready = _runtime(request).ready
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


async def server_metadata(request: Request) -> Response:
    return JSONResponse(
        {"name": "modelyard", "version": __version__, "extensions": ["binary_tensor_data"]}
    )


async def model_metadata(request: Request) -> Response:
    try:
        model = _model(request)
    except ClientError as error:
        return error_response(error)
    if model.bundle.kind == "text":
        from modelyard.serve.text_routes import text_metadata

        return text_metadata(model)
    session = model.session
    outputs = [
        {
            "name": o.name,
            "datatype": "FP32",
            "shape": [-1 if not isinstance(d, int) else d for d in o.shape],
        }
        for o in session.get_outputs()  # type: ignore[attr-defined]
    ]
    return JSONResponse(
        {
            "name": model.name,
            "versions": [model.version],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, *model.input_shape]}],
            "outputs": outputs,
            "parameters": {
                "labels": list(model.bundle.labels),
                "task": model.bundle.task,
                **model.provenance,
            },
        }
    )


async def model_ready(request: Request) -> Response:
    try:
        model = _model(request)
    except ClientError as error:
        return error_response(error)
    return JSONResponse({"name": model.name, "ready": _runtime(request).ready})


def _v2_input(request_data: v2.InferRequest, model: LoadedModel, max_rows: int) -> np.ndarray:
    """The model input from a v2 request: normalised FP32 NCHW, or raw UINT8 pixels."""
    if len(request_data.inputs) != 1:
        raise ClientError(
            f"send exactly one input tensor ('{INPUT_NAME}'); got {len(request_data.inputs)}"
        )
    name, array = next(iter(request_data.inputs.items()))
    spec = model.bundle.preprocessing
    if array.ndim == 0 or array.shape[0] == 0:
        raise ClientError(f"input '{name}' needs at least one row")
    if array.shape[0] > max_rows:
        raise PayloadTooLarge(f"{array.shape[0]} rows exceed the limit of {max_rows} per request")
    if array.dtype == np.uint8:  # raw pixels (N, H, W[, C]): preprocess like training did
        try:
            return to_model_input(array, spec)
        except Exception as error:
            raise ClientError(f"input '{name}': {error}") from None
    if array.dtype != np.float32:
        raise ClientError(
            f"input '{name}' must be FP32 (normalised N x C x H x W) "
            "or UINT8 pixels (N x H x W x C)"
        )
    if tuple(array.shape[1:]) != model.input_shape:
        raise ClientError(
            f"input '{name}' has shape {list(array.shape)}; expected {[-1, *model.input_shape]}"
        )
    if not np.all(np.isfinite(array)):
        raise ClientError(f"input '{name}' holds NaN or Inf")
    return array


async def infer(request: Request) -> Response:
    try:
        body, headers = await answer_v2(
            request.app.state, request.path_params, request.headers, await request.body()
        )
    except ClientError as error:
        return error_response(error)
    return Response(body, headers=headers)


async def answer_v2(
    state: State, path_params: Mapping[str, str], headers: Mapping[str, str], body: bytes
) -> tuple[bytes, dict[str, str]]:
    """A v2 infer request -> the response body and headers; ClientError for a 4xx.

    Shared by the Starlette route and the raw-ASGI fast path (``fastpath.py``), so
    both answer with the same bytes. ``headers`` is looked up with lower-case names.
    """
    started = time.perf_counter()
    runtime: ModelRuntime = state.runtime
    model = _named_model(runtime, path_params)
    header = headers.get(v2.HEADER_LENGTH)
    if header is not None and not (header.isascii() and header.isdigit()):
        raise ClientError("Inference-Header-Content-Length must be an integer")
    parsed = v2.decode_request(body, int(header) if header else None)
    texts: list[str] | None = None
    if model.bundle.kind == "text":
        from modelyard.serve.text_routes import text_v2_input

        inputs, texts = text_v2_input(parsed, model, state.settings.max_instances)
    else:
        inputs = _v2_input(parsed, model, state.settings.max_instances)
    unknown = [n for n, _ in parsed.outputs or [] if n not in model.output_names]
    if unknown:
        raise ClientError(f"unknown output(s) {unknown}; this model has {model.output_names}")
    served, outputs = await runtime.infer(inputs)
    monitor = state.monitor
    if monitor.log is not None:  # the id only matters to the prediction log
        request_id = parsed.id or headers.get("x-request-id") or uuid.uuid4().hex
        if texts is not None:
            monitor.observe_texts(served, request_id, texts, outputs, time.perf_counter() - started)
        else:
            monitor.observe_images(
                served, request_id, inputs, outputs, time.perf_counter() - started
            )
    return v2.encode_response(served.name, served.version, outputs, parsed)


async def _read_upload(request: Request, model: LoadedModel) -> np.ndarray:
    """The images of a multipart upload, decoded with the bundle's preprocessing."""
    max_rows = request.app.state.settings.max_instances
    try:
        form = await request.form(max_files=max_rows, max_fields=max_rows)
    except Exception as error:  # malformed multipart, too many parts
        raise ClientError(f"could not read the multipart upload: {error}") from None
    files = [(k, v) for k, v in form.multi_items() if isinstance(v, UploadFile)]
    if not files:
        raise ClientError("the multipart upload holds no files; send the image as a file field")
    data = [await f.read() for _, f in files]
    await form.close()
    names = [_upload_name(field, f.filename) for field, f in files]
    return simple.decode_files(data, model.bundle.preprocessing, names)


def _upload_name(field: str, filename: str | None) -> str:
    """How an error names one uploaded file: its form field, and its file name if any."""
    shown = f"upload {field!r}"
    if filename and filename != field:
        shown += f" ({filename[:100]!r})"
    return shown


def is_upload(content_type: str) -> bool:
    return content_type.startswith("multipart/form-data")


async def answer_predict(
    state: State, path_params: Mapping[str, str], headers: Mapping[str, str], body: bytes
) -> tuple[bytes, dict[str, str]]:
    """A JSON ``/v1`` predict request (image instances, or texts) -> the response body
    and headers; ClientError for a 4xx.

    Shared by the Starlette route (which alone reads multipart uploads) and the
    raw-ASGI fast path, so both answer with the same bytes. ``headers`` is looked up
    with lower-case names.
    """
    started = time.perf_counter()
    request_id = headers.get("x-request-id") or uuid.uuid4().hex
    model = _named_model(state.runtime, path_params)
    content_type = headers.get("content-type", "")
    if model.bundle.kind == "text":
        from modelyard.serve.text_routes import answer_text

        return await answer_text(state, model, content_type, body, request_id, started)
    if content_type and not content_type.startswith("application/json"):
        raise UnsupportedMediaType(
            f"content type '{content_type}' is not supported; upload images as "
            "multipart/form-data or send JSON instances"
        )
    images = simple.decode_instances(body, model.bundle.preprocessing, state.settings.max_instances)
    return await _answer_images(state, model, images, request_id, started)


async def _answer_images(
    state: State, model: LoadedModel, images: np.ndarray, request_id: str, started: float
) -> tuple[bytes, dict[str, str]]:
    served, outputs = await state.runtime.infer(to_model_input(images, model.bundle.preprocessing))
    state.monitor.observe_images(served, request_id, images, outputs, time.perf_counter() - started)
    body = simple.encode_predictions(
        outputs["probabilities"], served.bundle.labels, served.name, served.version, request_id
    )
    return body, {"content-type": "application/json", "x-request-id": request_id}


async def predict(request: Request) -> Response:
    started = time.perf_counter()
    state = request.app.state
    try:
        model = _model(request)
        if is_upload(request.headers.get("content-type", "")) and model.bundle.kind != "text":
            request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
            images = await _read_upload(request, model)
            body, headers = await _answer_images(state, model, images, request_id, started)
        else:
            body, headers = await answer_predict(
                state, request.path_params, request.headers, await request.body()
            )
    except ClientError as error:
        return error_response(error)
    return Response(body, headers=headers)


async def metrics(request: Request) -> Response:
    from modelyard.serve.metrics import CONTENT_TYPE

    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)


async def not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"error": f"no route {request.method} {request.url.path}; see /docs"}, status_code=404
    )


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    # Starlette's 405 carries the Allow header (RFC 9110 requires it); keep it.
    return JSONResponse(
        {"error": f"{request.method} is not allowed on {request.url.path}"},
        status_code=405,
        headers=getattr(exc, "headers", None),
    )
