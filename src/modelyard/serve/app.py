"""The app factory: routes + middleware + a lifespan that loads and drains the model."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from modelyard.serve import routes
from modelyard.serve.fastpath import FastPath
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.middleware import ServingMiddleware
from modelyard.serve.monitoring import ServingMonitor
from modelyard.serve.openapi import build_openapi, docs_page
from modelyard.serve.runtime import ModelRuntime
from modelyard.serve.settings import ServeSettings, settings_from_env

_SCHEMA = build_openapi()


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

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        await monitor.start(runtime)
        _settle_garbage_collector()
        try:
            yield
        finally:
            # Uvicorn stops accepting and waits for open requests before this runs;
            # draining here answers whatever the batcher still holds, and only then
            # is the prediction log flushed, so those answers are logged too.
            await runtime.close()
            await monitor.close()
            metrics.close()

    app = Starlette(
        routes=_routes(),
        lifespan=lifespan,
        exception_handlers={404: routes.not_found, 405: routes.method_not_allowed},
    )
    app.state.runtime = runtime
    app.state.metrics = metrics
    app.state.monitor = monitor
    app.state.settings = settings
    by_path = {getattr(r, "path", ""): r for r in app.routes}
    # Inside ServingMiddleware (added last, so outermost): auth, limits, metrics apply.
    app.add_middleware(
        FastPath,
        state=app.state,
        infer_route=by_path["/v2/models/{name}/infer"],
        predict_route=by_path["/v1/models/{name}:predict"],
    )
    app.add_middleware(
        ServingMiddleware,
        metrics=metrics,
        api_key_env=settings.api_key_env,
        max_body_bytes=settings.max_body_bytes,
    )
    return app


def app_from_env() -> Starlette:
    """Uvicorn factory for ``--workers N``: each worker reads the settings from the env."""
    return create_app(settings_from_env())
