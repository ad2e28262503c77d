"""The app factory: routes + middleware + a lifespan that loads and drains the model."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.errors import ModelyardError
from modelyard.serve import routes
from modelyard.serve.canary import Canary
from modelyard.serve.dataplane import DataPlane
from modelyard.serve.errors import ClientError
from modelyard.serve.fastpath import FastPath
from modelyard.serve.feedback import FeedbackService
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.middleware import ServingMiddleware
from modelyard.serve.monitoring import ServingMonitor
from modelyard.serve.openapi import build_openapi, docs_page
from modelyard.serve.runtime import ModelRuntime
from modelyard.serve.settings import ServeSettings, settings_from_env
from modelyard.serve.shadow import Shadow, ShadowThreads
from modelyard.serve.shadow_process import ShadowProcess

_SCHEMA = build_openapi()

STARTUP_ERROR_ENV = "MODELYARD_SERVE_STARTUP_ERROR"
"""A file where a worker process that cannot start writes why, in one line, for the
``modelyard serve --workers N`` parent to report (set by the parent)."""
STARTUP_FAILURE = 3
"""Uvicorn's exit status for "the app failed to start": its supervisor then stops
instead of restarting the worker."""


async def _openapi(request: Request) -> Response:
    return JSONResponse(_SCHEMA)


async def _docs(request: Request) -> Response:
    return HTMLResponse(docs_page(_SCHEMA))


def _routes() -> list[Route]:
    model = "/v2/models/{name}"
    version = "/v2/models/{name}/versions/{version}"
    return [
        Route("/v2/health/live", routes.live),
        Route("/v2/health/ready", routes.ready),
        Route("/v2", routes.server_metadata),
        Route(model, routes.model_metadata),
        Route(version, routes.model_metadata),
        Route(f"{model}/ready", routes.model_ready),
        Route(f"{version}/ready", routes.model_ready),
        Route(f"{model}/infer", routes.infer, methods=["POST"]),
        Route(f"{version}/infer", routes.infer, methods=["POST"]),
        Route("/v1/models/{name}:predict", routes.predict, methods=["POST"]),
        Route("/v1/feedback", routes.feedback, methods=["POST"]),
        Route("/metrics", routes.metrics),
        Route("/openapi.json", _openapi),
        Route("/docs", _docs),
    ]


def _settle_garbage_collector() -> None:
    """Keep full collections off the request path (the p99 tail).

    After startup the heap holds tens of thousands of long-lived objects (modules,
    sqlalchemy, omegaconf, the bundle); every full collection would walk them all
    while requests wait. ``gc.freeze`` moves them out of the collector's view; a larger
    first-generation threshold makes young collections rarer for the short-lived
    dicts and lists each request allocates (a collection is still guaranteed).
    """
    gc.collect()
    gc.freeze()
    threshold, *older = gc.get_threshold()
    gc.set_threshold(max(threshold, 7_000), *older)


def create_app(settings: ServeSettings) -> Starlette:
    """A server for ``settings.model``; the model loads (and warms) at startup."""
    metrics = ServerMetrics()
    runtime = ModelRuntime(settings, metrics)
    monitor = ServingMonitor(settings, metrics)
    feedback = FeedbackService(monitor, metrics)
    shadow: Shadow | None = None
    if settings.shadow:
        kind = ShadowProcess if settings.shadow_process else ShadowThreads
        shadow = kind(settings, metrics, monitor)
    canary = Canary(settings, metrics) if settings.canary else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await runtime.start()
            await monitor.start(runtime)
            if shadow is not None:
                await shadow.start()
            if canary is not None:
                await canary.start()
            if runtime.current is not None:
                feedback.show_test_accuracy(runtime.current)
        except ModelyardError as error:
            app.state.startup_error = error
            report_startup_error(error)
            raise
        _settle_garbage_collector()
        try:
            yield
        finally:
            # Uvicorn stops accepting and waits for open requests before this runs;
            # draining here answers whatever the batcher still holds, and only then
            # is the prediction log flushed, so those answers are logged too.
            await runtime.close()
            if shadow is not None:  # its queued work is logged before the log closes
                await shadow.close()
            if canary is not None:
                await canary.close()
            await monitor.close()
            feedback.close()
            metrics.close()

    app = _ServingApp(
        routes=_routes(),
        lifespan=lifespan,
        exception_handlers={
            404: routes.not_found,
            405: routes.method_not_allowed,
            ClientError: routes.client_error,
        },
    )
    app.state.dataplane = DataPlane(runtime, monitor, settings.max_instances, shadow, canary)
    app.state.runtime = runtime
    app.state.metrics = metrics
    app.state.monitor = monitor
    app.state.feedback = feedback
    app.state.settings = settings
    app.state.startup_error = None
    by_path = {getattr(r, "path", ""): r for r in app.routes}
    # Inside ServingMiddleware (added last, so outermost): auth, limits, metrics apply.
    app.add_middleware(
        FastPath,
        plane=app.state.dataplane,
        infer_route=by_path["/v2/models/{name}/infer"],
        predict_route=by_path["/v1/models/{name}:predict"],
    )
    app.add_middleware(
        ServingMiddleware,
        metrics=metrics,
        api_key_env=settings.api_key_env,
        max_body_bytes=settings.max_body_bytes,
    )
    app.add_middleware(_QuietStartupErrors, state=app.state)
    return app


class _ServingApp(Starlette):
    """Starlette, with HTTP requests handed straight to :class:`ServingMiddleware`.

    Starlette puts its ``ServerErrorMiddleware`` outermost, then the middleware added
    here; ``ServingMiddleware`` already answers any exception with a JSON 500 and
    ``_QuietStartupErrors`` only watches the lifespan, so for HTTP both are pure cost
    (~5 us a request, a coroutine and a wrapped ``send`` each). Lifespan and anything
    else still take the whole stack.
    """

    _serving: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        serving = self._serving
        if serving is None or scope["type"] != "http":
            if scope["type"] == "http":
                self._serving = serving = _find(self, ServingMiddleware)
            if serving is None or scope["type"] != "http":
                await super().__call__(scope, receive, send)
                return
        scope["app"] = self  # what Starlette.__call__ sets: routes reach app.state
        await serving(scope, receive, send)


def _find(app: Starlette, kind: type) -> ASGIApp | None:
    """The ``kind`` layer of ``app``'s middleware stack (built if need be), if only
    Starlette's ``ServerErrorMiddleware`` and ``_QuietStartupErrors`` are above it."""
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    layer: object = app.middleware_stack
    while isinstance(layer, (ServerErrorMiddleware, _QuietStartupErrors)):
        layer = layer.app
    return cast("ASGIApp", layer) if isinstance(layer, kind) else None


class _QuietStartupErrors:
    """A user's startup error (a :class:`ModelyardError`) is reported once, as one line,
    by ``modelyard serve``: keep Starlette's traceback of it out of uvicorn's log.
    Any other startup failure is a bug, and keeps its traceback."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def quiet_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and self.state.startup_error:
                message = {"type": "lifespan.startup.failed", "message": ""}
            await send(message)

        await self.app(scope, receive, quiet_send)


def report_startup_error(error: ModelyardError) -> None:
    """Leave the one-line reason where the ``--workers N`` parent looks for it."""
    target = os.environ.get(STARTUP_ERROR_ENV)
    if target:
        with contextlib.suppress(OSError):
            Path(target).write_text(str(error))


def app_from_env() -> Starlette:
    """Uvicorn factory for ``--workers N``: each worker reads the settings from the env.

    A user's error here ends the worker with uvicorn's startup-failure status (so the
    supervisor stops rather than restarting it forever) and its reason in one line.
    """
    try:
        return create_app(settings_from_env())
    except ModelyardError as error:
        report_startup_error(error)
        sys.exit(STARTUP_FAILURE)
