"""Run the app under uvicorn, with graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from types import FrameType

from modelyard.serve.settings import SETTINGS_ENV, ServeSettings

# prometheus_client reads this in each worker process; the metrics module renders
# from it (kept as a literal here so the parent process need not import the client).
_MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# How long a stopping server waits for open requests before it gives up on them.
GRACEFUL_SHUTDOWN_S = 30


def run_server(settings: ServeSettings) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests finish before the process exits.

    Each worker process builds its own app from the settings in the environment, so
    one code path serves ``--workers 1`` and ``--workers N``.
    """
    import uvicorn

    from modelyard.serve.registry_check import check_registry_reachable, limit_mlflow_retries

    limit_mlflow_retries()
    check_registry_reachable(settings)
    os.environ[SETTINGS_ENV] = settings.to_env()
    # Uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal
    # with the handler it found installed; make that handler a clean exit, so a
    # graceful stop ends with status 0 rather than "killed by signal".
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _exit_cleanly)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with _shared_metrics(settings.workers):
        uvicorn.run(
            "modelyard.serve.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level="info",
            access_log=False,  # per-request log lines cost more than the inference
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            lifespan="on",
        )


@contextlib.contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, a fresh folder through which they pool their metrics.

    A folder the user set (e.g. a mounted emptyDir in a pod) is used as it is.
    """
    if workers < 2 or os.environ.get(_MULTIPROCESS_ENV):
        yield
        return
    folder = tempfile.mkdtemp(prefix="modelyard-metrics-")
    os.environ[_MULTIPROCESS_ENV] = folder
    try:
        yield
    finally:
        os.environ.pop(_MULTIPROCESS_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)
