"""HTTP handlers only: turn a request into a data-plane call, and its result (or
its :class:`ClientError`) into a response.

Everything a request means, beyond its bytes and headers, is
:class:`~modelyard.serve.dataplane.DataPlane`'s. :func:`answer_v2` and
:func:`answer_predict` are shared with the raw-ASGI fast path (``fastpath.py``), so
both answer with the same bytes; :func:`error_response` is the one place a client
error becomes a status code and body (registered once, as the app's handler for
:class:`ClientError`, and called by the fast path).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import cast

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modelyard.serve.canary import KEY_HEADER
from modelyard.serve.codecs import v2
from modelyard.serve.dataplane import DataPlane, new_request_id
from modelyard.serve.errors import ClientError
from modelyard.serve.runtime import LoadedModel


def _plane(request: Request) -> DataPlane:
    return cast("DataPlane", request.app.state.dataplane)


def error_response(error: ClientError) -> Response:
    """A client error as the server answers it: ``{"error": ...}`` with its status."""
    headers = {"retry-after": "1"} if error.status in (429, 503) else None
    return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)


async def client_error(request: Request, exc: Exception) -> Response:
    """The app's exception handler for :class:`ClientError` (handlers just raise)."""
    assert isinstance(exc, ClientError)
    return error_response(exc)


def _model(request: Request) -> LoadedModel:
    """The loaded model the path names (404 for any other name or version)."""
    params = request.path_params
    return _plane(request).model(params["name"], params.get("version"))


async def live(request: Request) -> Response:
    return JSONResponse({"live": True})


async def ready(request: Request) -> Response:
    is_ready = _plane(request).ready
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


async def server_metadata(request: Request) -> Response:
    return JSONResponse(DataPlane.server_metadata())


async def model_metadata(request: Request) -> Response:
    return JSONResponse(_plane(request).model_metadata(_model(request)))


async def model_ready(request: Request) -> Response:
    return JSONResponse(_plane(request).model_ready(_model(request)))


def decode_v2(headers: Mapping[str, str], body: bytes) -> v2.InferRequest:
    """A v2 infer body, JSON or JSON header + binary tensors (the header says which)."""
    header = headers.get(v2.HEADER_LENGTH)
    if header is not None and not (header.isascii() and header.isdigit()):
        raise ClientError("Inference-Header-Content-Length must be an integer")
    return v2.decode_request(body, int(header) if header else None)


async def answer_v2(
    plane: DataPlane, path_params: Mapping[str, str], headers: Mapping[str, str], body: bytes
) -> tuple[bytes, dict[str, str]]:
    """A v2 infer request -> the response body and headers; ClientError for a 4xx.

    ``headers`` is looked up with lower-case names.
    """
    started = time.perf_counter()
    name, version = path_params["name"], path_params.get("version")
    model = plane.model(name, version)  # 404 before the body is read
    request = decode_v2(headers, body)
    request_id = headers.get("x-request-id")
    if plane.canary is not None:  # the body's id may be the key
        model = plane.model(name, version, headers.get(KEY_HEADER) or request.id or request_id)
    answer = await plane.infer(model, request, request_id, started)
    return v2.encode_response(answer.model_name, answer.model_version, answer.outputs, request)


async def infer(request: Request) -> Response:
    body, headers = await answer_v2(
        _plane(request), request.path_params, request.headers, await request.body()
    )
    return Response(body, headers=headers)


async def answer_predict(
    plane: DataPlane, path_params: Mapping[str, str], headers: Mapping[str, str], body: bytes
) -> tuple[bytes, dict[str, str]]:
    """A JSON ``/v1`` predict request -> the response body and headers; ClientError
    for a 4xx. ``headers`` is looked up with lower-case names."""
    started = time.perf_counter()
    request_id = headers.get("x-request-id") or new_request_id()
    key = headers.get(KEY_HEADER) or request_id
    model = plane.model(path_params["name"], path_params.get("version"), key)
    answer = await plane.predict(model, body, headers.get("content-type", ""), request_id, started)
    return answer.body, _v1_headers(answer.request_id)


def _v1_headers(request_id: str) -> dict[str, str]:
    return {"content-type": "application/json", "x-request-id": request_id}


async def _read_upload(request: Request, max_rows: int) -> tuple[list[bytes], list[str]]:
    """The files of a multipart upload, and how errors name each one."""
    try:
        form = await request.form(max_files=max_rows, max_fields=max_rows)
    except Exception as error:  # malformed multipart, too many parts
        raise ClientError(f"could not read the multipart upload: {error}") from None
    files = [(k, v) for k, v in form.multi_items() if isinstance(v, UploadFile)]
    if not files:
        raise ClientError("the multipart upload holds no files; send the image as a file field")
    data = [await f.read() for _, f in files]
    await form.close()
    return data, [_upload_name(field, f.filename) for field, f in files]


def _upload_name(field: str, filename: str | None) -> str:
    """How an error names one uploaded file: its form field, and its file name if any."""
    shown = f"upload {field!r}"
    if filename and filename != field:
        shown += f" ({filename[:100]!r})"
    return shown


def is_upload(content_type: str) -> bool:
    return content_type.startswith("multipart/form-data")


async def predict(request: Request) -> Response:
    started = time.perf_counter()
    plane = _plane(request)
    model = _model(request)
    if is_upload(request.headers.get("content-type", "")) and model.modality.accepts_uploads:
        request_id = request.headers.get("x-request-id") or new_request_id()
        key = request.headers.get(KEY_HEADER) or request_id
        model = plane.model(model.name, request.path_params.get("version"), key)
        files, names = await _read_upload(request, plane.max_rows)
        answer = await plane.predict_files(model, files, names, request_id, started)
        return Response(answer.body, headers=_v1_headers(answer.request_id))
    body, headers = await answer_predict(
        plane, request.path_params, request.headers, await request.body()
    )
    return Response(body, headers=headers)


async def feedback(request: Request) -> Response:
    """True labels for served requests: one ``{"id", "label"}`` or a list of them."""
    import orjson

    plane = _plane(request)
    model = plane.model(plane.served_name())
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        raise ClientError(f"feedback is not valid JSON: {error}") from None
    return JSONResponse(await request.app.state.feedback.accept(model, body))


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
