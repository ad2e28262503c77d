"""A raw-ASGI fast path for the hottest route, ``POST /v2/models/{name}/infer``.

Starlette's router tries every route's regex in turn, then builds a ``Request``,
wraps the handler for exception handling and renders a ``Response``: tens of
microseconds per request on the single event-loop thread, which is what limits a
one-worker server on a small machine. This middleware sits *inside*
``ServingMiddleware`` (API key, body limit, request metrics, error JSON all still
apply), recognises the path with two string tests, and calls the same
``routes.answer_v2`` the Starlette route calls, so both answer with the same bytes.
Everything else (other routes, other methods, a ``root_path``) goes to Starlette.
"""

from __future__ import annotations

from starlette.datastructures import State
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard.serve import routes
from modelyard.serve.errors import ClientError

_PREFIX, _SUFFIX = "/v2/models/", "/infer"


def v2_infer_name(scope: Scope) -> str | None:
    """The model name when ``scope`` is ``POST /v2/models/{name}/infer``, else None."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    name = path[len(_PREFIX) : -len(_SUFFIX)]
    return name if name and "/" not in name else None


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


class InferFastPath:
    def __init__(self, app: ASGIApp, state: State, route: BaseRoute) -> None:
        self.app = app
        self.state = state
        self.route = route
        """The Starlette route it stands in for: its path template labels the metrics."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = v2_infer_name(scope)
        if name is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        scope["path_params"] = {"name": name}
        # Starlette's Headers: latin-1, and the first of repeated headers wins.
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(scope["headers"])}
        try:
            body, answer_headers = await routes.answer_v2(
                self.state, scope["path_params"], headers, await read_body(receive)
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
