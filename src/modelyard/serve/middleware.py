"""Pure ASGI middleware: metrics, API key, body size limit, and errors as JSON.

Written against raw ASGI rather than Starlette's BaseHTTPMiddleware, which adds
a task and a memory stream per request on the hot path.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.serve.metrics import ServerMetrics

logger = logging.getLogger("modelyard.serve")
OPEN_PATHS = ("/v2/health/", "/metrics", "/docs", "/openapi.json")


async def send_json_error(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = orjson.dumps({"error": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def route_label(scope: Scope) -> str:
    """A bounded label: the route template, never the raw path a client chose."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class ServingMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServerMetrics, api_key_env: str, max_body_bytes: int):
        self.app = app
        self.metrics = metrics
        self.api_key = os.environ.get(api_key_env) or None
        self.max_body_bytes = max_body_bytes

    def _authorised(self, scope: Scope) -> bool:
        if self.api_key is None or scope["path"].startswith(OPEN_PATHS):
            return True
        headers = dict(scope["headers"])
        offered = headers.get(b"x-api-key", b"")
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            offered = auth[7:].strip()
        # Constant time: the comparison must not reveal how much of a guess was right.
        return hmac.compare_digest(offered, self.api_key.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _TooLarge
            return message

        metrics = self.metrics
        if not metrics.deferred:  # one process: the gauge reads active_requests
            metrics.in_flight.inc()
        metrics.active_requests += 1
        try:
            declared = dict(scope["headers"]).get(b"content-length")
            if not self._authorised(scope):
                await send_json_error(
                    send_wrapper,
                    401,
                    "missing or wrong API key; send 'Authorization: Bearer <key>' "
                    "or 'X-API-Key: <key>'",
                    [(b"www-authenticate", b"Bearer")],
                )
            elif declared is not None and (
                not declared.isdigit() or int(declared) > self.max_body_bytes
            ):
                await send_json_error(
                    send_wrapper, 413, f"request body over the limit of {self.max_body_bytes} bytes"
                )
            else:
                try:
                    await self.app(scope, limited_receive, send_wrapper)
                except _TooLarge:
                    if not status_holder["started"]:
                        await send_json_error(
                            send_wrapper,
                            413,
                            f"request body over the limit of {self.max_body_bytes} bytes",
                        )
                except Exception:  # a bug must not take the server down or leak a trace
                    logger.exception("unhandled error on %s", scope["path"])
                    if not status_holder["started"]:
                        await send_json_error(
                            send_wrapper, 500, "internal error; see the server log"
                        )
        finally:
            if not metrics.deferred:
                metrics.in_flight.dec()
            metrics.active_requests -= 1
            metrics.count_request(
                route_label(scope), str(status_holder["status"]), time.perf_counter() - started
            )


class _TooLarge(Exception):
    pass
