"""A raw-ASGI fast path for the hot routes: ``POST /v2/models/{name}/infer`` and
JSON ``POST /v1/models/{name}:predict``.

Starlette's router tries every route's regex in turn, then builds a ``Request``,
wraps the handler for exception handling and renders a ``Response``: tens of
microseconds per request on the single event-loop thread, which is what limits a
one-worker server on a small machine. This middleware sits *inside*
``ServingMiddleware`` (API key, body limit, request metrics, error JSON all still
apply), recognises the path with two string tests, and calls the same
``routes.answer_v2`` / ``routes.answer_predict`` the Starlette routes call (which
translate for the :class:`~modelyard.serve.dataplane.DataPlane`), so both answer
with the same bytes and map errors with the same ``routes.error_response``.
Everything else (other routes, other methods, multipart uploads, a ``root_path``)
goes to Starlette.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard.serve import routes
from modelyard.serve.dataplane import DataPlane
from modelyard.serve.errors import ClientError

Answer = Callable[
    [DataPlane, Mapping[str, str], Mapping[str, str], bytes],
    Awaitable[tuple[bytes, dict[str, str]]],
]
_V2 = ("/v2/models/", "/infer")
_V1 = ("/v1/models/", ":predict")


def _name(scope: Scope, prefix: str, suffix: str) -> str | None:
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not (path.startswith(prefix) and path.endswith(suffix)):
        return None
    name = path[len(prefix) : -len(suffix)]
    return name if name and "/" not in name else None


def v2_infer_name(scope: Scope) -> str | None:
    """The model name when ``scope`` is ``POST /v2/models/{name}/infer``, else None."""
    return _name(scope, *_V2)


def v1_predict_name(scope: Scope) -> str | None:
    """The model name when ``scope`` is ``POST /v1/models/{name}:predict``, else None."""
    return _name(scope, *_V1)


async def read_body(receive: Receive) -> bytes:
    """The whole request body, as ``Request.body()`` reads it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class FastPath:
    def __init__(
        self, app: ASGIApp, plane: DataPlane, infer_route: BaseRoute, predict_route: BaseRoute
    ) -> None:
        self.app = app
        self.plane = plane
        # The Starlette routes it stands in for: their path templates label the metrics.
        self.infer_route = infer_route
        self.predict_route = predict_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, answer = self.infer_route, routes.answer_v2
        name = v2_infer_name(scope)
        if name is None:
            route, answer = self.predict_route, routes.answer_predict
            name = v1_predict_name(scope)
        if name is None:
            await self.app(scope, receive, send)
            return
        # Starlette's Headers: latin-1, and the first of repeated headers wins.
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(scope["headers"])}
        if answer is routes.answer_predict and routes.is_upload(headers.get("content-type", "")):
            await self.app(scope, receive, send)  # multipart: Starlette parses the form
            return
        scope["route"] = route
        scope["path_params"] = {"name": name}
        await self._answer(answer, headers, scope, receive, send)

    async def _answer(
        self, answer: Answer, headers: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        try:
            body, answer_headers = await answer(
                self.plane, scope["path_params"], headers, await read_body(receive)
            )
        except ClientError as error:
            await routes.error_response(error)(scope, receive, send)
            return
        # What starlette.responses.Response(body, headers=answer_headers) sends.
        raw = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer_headers.items()
        ]
        raw.append((b"content-length", str(len(body)).encode("latin-1")))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": body})
