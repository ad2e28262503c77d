"""Fail fast, in one line, when the model must come from an unreachable MLflow server
through MLflow's own client (``runs:/`` URIs; ``models:/`` go through
:mod:`modelyard.registry_client`, which fails fast itself and can use its cache).

Without this, MLflow's HTTP client retries a refused connection for minutes and
the server then dies with a traceback. The server also caps MLflow's retries, so
that its own alias poll (which backs off) decides how often to try again.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from modelyard.bundle import parse_model_uri
from modelyard.errors import RegistryError
from modelyard.serve.settings import ServeSettings

# MLflow's defaults (7 retries, backoff factor 2, 120 s timeout) suit a batch job, not
# a server answering probes; a user's own values win.
MLFLOW_CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # MLflow parses it as an int
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
PROBE_TIMEOUT_S = 3.0


def limit_mlflow_retries() -> None:
    for name, value in MLFLOW_CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)


def check_registry_reachable(settings: ServeSettings) -> None:
    """Raise RegistryError naming the tracking URI if the model needs it and it is down."""
    if Path(settings.model).exists():
        return  # a bundle folder needs no registry
    if not parse_model_uri(settings.model).startswith(("models:/", "runs:/")):
        return  # bundle.load explains what is wrong with the URI
    uri = settings.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if not uri.startswith(("http://", "https://")):
        return  # a local store (SQLite, files) has no server to be down
    if parse_model_uri(settings.model).startswith("models:/"):
        # registry_client fetches these: it fails fast by itself, and may start from
        # the cache while the server is down, which this check would forbid.
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # it answered: reachable (auth or routing is MLflow's to report)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RegistryError(
            f"cannot reach the MLflow tracking server at {uri} ({reason}) to load "
            f"{settings.model}; start it, point tracking_uri=... (or MLFLOW_TRACKING_URI) "
            "at a running one, or serve a bundle folder instead"
        ) from None
