"""Run the app under uvicorn, with graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from modelyard.errors import ModelyardError, ServiceError, UsageError
from modelyard.serve.settings import SETTINGS_ENV, ServeSettings

if TYPE_CHECKING:
    import asyncio

    import uvicorn

# prometheus_client reads this in each worker process; the metrics module renders
# from it (kept as a literal here so the parent process need not import the client).
_MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# How long a stopping server waits for open requests before it gives up on them.
GRACEFUL_SHUTDOWN_S = 30

BACKLOG = 2048
"""Uvicorn's default listen backlog."""

APP_FACTORY = "modelyard.serve.app:app_from_env"
"""What each ``--workers N`` process imports and calls to build its app."""


def check_second_aliases(settings: ServeSettings) -> None:
    """A ``shadow=`` or ``canary=`` alias that the registry does not have is the user's
    mistake (one line, exit 2); one whose version later fails to load is not fatal."""
    from modelyard.errors import ConfigError, RegistryError
    from modelyard.registry_client import RegistryUnreachable
    from modelyard.serve.runtime import _resolve
    from modelyard.serve.settings import second_alias_uri

    for key in ("shadow", "canary"):
        alias = getattr(settings, key)
        if not alias:
            continue
        uri = second_alias_uri(settings, alias)
        try:
            version = _resolve(uri, settings)
        except RegistryUnreachable:
            continue  # the main model starts from its cache; the shadow's poll retries
        except (RegistryError, ModelyardError) as error:
            raise ConfigError(f"serve setting {key}={alias}: {error}") from None
        if version is None:
            raise ConfigError(f"serve setting {key}={alias}: {uri} names no version")


def run_server(settings: ServeSettings) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests finish before the process exits.
    A stop while the model loads, before anything was served, is a ``KeyboardInterrupt``
    that says so (the CLI: one line, exit 130).

    The port is taken first and the model loaded next, both before uvicorn starts,
    so a taken port, a missing bundle or alias, or a graph ONNX Runtime cannot load
    is a :class:`ModelyardError` (one line from the CLI, exit 2), never a traceback.
    With ``--workers 1`` the app serves the model loaded here; with ``--workers N``
    the model is resolved (and cached) here and each worker process builds its own
    app from the settings in the environment.
    """
    from modelyard.serve.registry_check import check_registry_reachable, limit_mlflow_retries

    sock = bind_port(settings.host, settings.port)
    previous = {s: signal.getsignal(s) for s in _STOP_SIGNALS}
    stopped: list[int] = []

    def stop_loading(signum: int, frame: FrameType | None) -> None:
        stopped.append(signum)
        raise KeyboardInterrupt(_STOPPED_LOADING)

    for stop_signal in _STOP_SIGNALS:
        signal.signal(stop_signal, stop_loading)
    try:
        limit_mlflow_retries()
        check_registry_reachable(settings)
        check_second_aliases(settings)
        os.environ[SETTINGS_ENV] = settings.to_env()
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
        if settings.workers == 1:
            _serve_in_this_process(settings, sock, stopped)
        else:
            _serve_with_workers(settings, sock, stopped)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:
        # A stop that landed inside an import or a C extension comes out as its error
        # (onnxruntime's "ImportError: initialization failed"): say it was the stop.
        if stopped:
            raise KeyboardInterrupt(_STOPPED_LOADING) from error
        raise
    finally:
        sock.close()
        for stop_signal, handler in previous.items():
            signal.signal(stop_signal, handler)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


_STOPPED_LOADING = "stopped while the model loaded; nothing was served"


def _stop_gracefully(stopped: list[int]) -> None:
    """From here on a stop signal is uvicorn's graceful stop. Uvicorn re-raises the
    signal afterwards with the handler it found installed; that handler exits cleanly,
    so a graceful stop ends with status 0 rather than "killed by signal". Before here
    (the model loading) a stop is an interrupt that says so: the handler this replaced
    exited 0 wherever the signal landed, or died inside an import with a traceback. A
    stop that the loading code swallowed (a ``__del__``, a broad ``except``) is raised
    here, before anything is served."""
    if stopped:  # a stop during the load that something in it swallowed
        raise KeyboardInterrupt(_STOPPED_LOADING)
    for stop_signal in _STOP_SIGNALS:
        signal.signal(stop_signal, _exit_cleanly)


def bind_port(host: str, port: int) -> socket.socket:
    """The listening address, taken now; a port in use (or a bad host) says what to pass.

    The socket listens at once: two sockets with SO_REUSEADDR may both bind a port
    that nobody listens on yet, so binding alone would let a second server pass this
    check. Connections made while the model loads wait in the backlog.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            problem = f"port {port} on {host} is already in use"
            fix = f"stop what listens there or pass --port with a free one (e.g. --port {port + 1})"
        elif error.errno == errno.EACCES:
            problem = f"no permission to listen on port {port}"
            fix = "pass --port 1024 or above (lower ports need root)"
        elif isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
            problem = f"cannot listen on host {host!r} (not an address of this machine)"
            fix = "pass --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (all interfaces)"
        else:
            problem = f"cannot listen on {host}:{port} ({error.strerror or error})"
            fix = "pass another --host or --port"
        raise UsageError(f"{problem}; {fix}") from None
    sock.set_inheritable(True)  # worker processes serve on it too
    return sock


def _uvicorn_config(app: object, settings: ServeSettings) -> uvicorn.Config:
    import uvicorn

    return uvicorn.Config(
        app,  # type: ignore[arg-type]  # uvicorn's ASGI type is narrower than Starlette's
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        factory=isinstance(app, str),
        log_level="info",
        access_log=False,  # per-request log lines cost more than the inference
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        lifespan="on",
        http=_http_protocol(),
    )


def _http_protocol() -> type[asyncio.Protocol] | str:
    """Uvicorn's httptools protocol sending each response in one write, when httptools
    is installed (``uvicorn[standard]``); else uvicorn's own choice."""
    try:
        from modelyard.serve.httpwrite import CoalescingHttpToolsProtocol
    except ImportError:
        return "auto"
    return CoalescingHttpToolsProtocol


def _say_listening(sock: socket.socket) -> None:
    # Uvicorn says where it listens only when it binds the socket itself.
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port
    )


def _serve_in_this_process(
    settings: ServeSettings, sock: socket.socket, stopped: list[int]
) -> None:
    import uvicorn

    from modelyard.serve.app import create_app

    app = create_app(settings)
    app.state.runtime.preload()
    server = uvicorn.Server(_uvicorn_config(app, settings))
    _say_listening(sock)
    _stop_gracefully(stopped)
    try:
        server.run(sockets=[sock])
    except SystemExit as stop:
        if server.started or not stop.code:
            raise  # a graceful stop (_exit_cleanly); uvicorn's failed start exits 3
    if not server.started:  # the app's startup (after the model loaded) failed
        error = app.state.startup_error
        if isinstance(error, ModelyardError):
            raise error
        raise ServiceError("the server did not start; the log above says why")


def _serve_with_workers(settings: ServeSettings, sock: socket.socket, stopped: list[int]) -> None:
    from uvicorn.supervisors import Multiprocess

    from modelyard import bundle as bundle_io
    from modelyard.monitor.logpeers import LOG_PEERS_ENV
    from modelyard.serve.app import STARTUP_ERROR_ENV, STARTUP_FAILURE

    # Resolve the model once here: a missing folder or alias is one line before any
    # worker starts, and a registry model is downloaded to the cache the workers read.
    bundle_io.load(settings.model, settings.tracking_uri)
    with _shared_metrics(settings.workers), tempfile.TemporaryDirectory() as scratch:
        reason = Path(scratch) / "startup-error.txt"
        os.environ[STARTUP_ERROR_ENV] = str(reason)
        # Where the workers' prediction logs find each other (feedback asks them to write).
        peers = Path(scratch) / "log-peers"
        peers.mkdir()
        os.environ[LOG_PEERS_ENV] = str(peers)
        try:
            _stop_gracefully(stopped)  # before the supervisor, which installs its own
            supervisor = Multiprocess(_uvicorn_config(APP_FACTORY, settings), sockets=[sock])
            _say_listening(sock)
            supervisor.run()
        finally:
            os.environ.pop(STARTUP_ERROR_ENV, None)
            os.environ.pop(LOG_PEERS_ENV, None)
        if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
            # The supervisor stopped because a worker could not start.
            raise ServiceError(
                reason.read_text().strip()
                if reason.exists()
                else "a worker process did not start; the log above says why"
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
