"""Server settings: one typed schema, filled from defaults, ``key=value`` overrides
and the environment (for ``--workers``, where each worker re-reads them)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from modelyard.errors import ConfigError

SETTINGS_ENV = "MODELYARD_SERVE_SETTINGS"


@dataclass
class ServeSettings:
    model: str = ""
    """What to serve: ``<name>@<alias>``, ``models:/<name>/<version>`` or a bundle folder."""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    """Server processes (each loads the model and batches on its own)."""
    max_batch_size: int = 32
    """Most rows one ONNX Runtime call receives."""
    max_delay_ms: float = 0.0
    """Longest a request waits for others to join its batch. 0 still batches: a batch
    forms only when ONNX Runtime is free, so requests that arrive while it computes
    are merged. Raise it when a model gains much from bigger batches."""
    max_queue_rows: int = 4096
    """Rows queued beyond this are refused with 429 (back-pressure, not a crash)."""
    max_instances: int = 256
    """Most instances (rows) one request may carry."""
    max_body_bytes: int = 16 * 1024 * 1024
    """Request bodies larger than this get 413."""
    request_timeout_s: float = 10.0
    """A request not answered in this time gets 503 (the server stays up)."""
    api_key_env: str = "MODELYARD_API_KEY"
    """Env var holding the API key; when it is set, requests must send it."""
    poll_interval_s: float = 10.0
    """How often the alias the server started with is checked (0 disables hot reload)."""
    intra_op_threads: int = 0
    """ONNX Runtime threads per inference (0 lets ONNX Runtime choose: one per core)."""
    ort_spinning: bool = False
    """Let ONNX Runtime's intra-op threads busy-wait for work between runs (its own
    default). Off here: spinning threads take the CPU the event loop needs; on 2
    cores at c=32 they doubled the server's CPU per request (1,140 vs 660 us,
    2026-11-24) and cut req/s by a third."""
    inline_max_ms: float = 1.0
    """A request that finds the server otherwise idle (no other request in flight,
    nothing queued or computing) runs its model call right on the event loop when one
    row takes at most this long (timed at warm-up): nothing could join its batch, and
    the two thread hand-offs cost more than such a call. 0 always uses the batcher's
    thread. Only with ``max_delay_ms=0``."""
    batch_workers: int = 1
    """Batches computed at once, each by its own thread. With ``intra_op_threads=1``
    and 2 workers, two single-threaded model calls use two cores without the
    synchronisation cost of one call split over two threads."""
    tracking_uri: str | None = None
    """MLflow tracking URI; empty uses MLFLOW_TRACKING_URI or the embedded store."""
    log_predictions: bool = True
    """Record every (sampled) prediction in the prediction log, for drift monitoring:
    time, model, version, request id, input summary, embedding projection, label,
    confidence, latency. Writes are batched off the request path."""
    prediction_log_url: str | None = None
    """SQLAlchemy URL of the log (``sqlite:///...`` or ``postgresql://...``); empty uses
    ``MODELYARD_PREDICTION_LOG`` or SQLite (WAL) at ``$MODELYARD_HOME/predictions.db``."""
    log_sample_rate: float = 1.0
    """Share of requests whose predictions are logged (0..1)."""
    log_flush_interval_s: float = 1.0
    """How often buffered records are written; a killed server loses at most this much."""
    log_write_rows: int = 512
    """Queued rows that start a write before the interval is up (0: only the interval).
    At thousands of requests per second, one write per second meant one long GIL hold
    on the log thread (the p99 tail) and a second's inputs held in memory."""
    log_buffer_records: int = 10_000
    """Records held while the database is slow or down; beyond this new records are
    dropped and counted in ``modelyard_prediction_log_dropped_total``."""
    log_stop_timeout_s: float = 10.0
    """How long a stopping server keeps trying to write buffered records while the
    database is unreachable; what is still unwritten then is counted as dropped."""
    log_raw_inputs: bool = False
    """Also store the raw input (uint8 pixels) of each logged prediction."""
    drift_interval_s: float = 0.0
    """How often the server checks drift on its newest logged records and updates the
    ``modelyard_drift_*`` gauges (0 disables; needs ``log_predictions``)."""
    drift_window: int = 500
    """Newest records of the served version that each periodic drift check tests."""

    def to_env(self) -> str:
        return json.dumps(asdict(self))


def settings_from(overrides: Sequence[str] = (), **values: object) -> ServeSettings:
    """Defaults, then keyword values, then ``key=value`` overrides, type-checked."""
    base = OmegaConf.structured(ServeSettings)
    try:
        merged = OmegaConf.merge(
            base,
            OmegaConf.create({k: v for k, v in values.items() if v is not None}),
            OmegaConf.from_dotlist(list(overrides)),
        )
        settings = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        first = str(error).splitlines()[0]
        raise ConfigError(
            f"bad serve setting: {first}; valid keys: {', '.join(asdict(ServeSettings()))}"
        ) from error
    assert isinstance(settings, ServeSettings)
    if not settings.model:
        raise ConfigError("nothing to serve: pass <name>@<alias> or a bundle folder")
    if settings.max_batch_size < 1 or settings.max_instances < 1 or settings.workers < 1:
        raise ConfigError("max_batch_size, max_instances and workers must be at least 1")
    if settings.inline_max_ms < 0:
        raise ConfigError(f"inline_max_ms must be >= 0, got {settings.inline_max_ms}")
    if settings.batch_workers < 1:
        raise ConfigError(f"batch_workers must be at least 1, got {settings.batch_workers}")
    if not 0.0 <= settings.log_sample_rate <= 1.0:
        raise ConfigError(f"log_sample_rate must be within 0..1, got {settings.log_sample_rate}")
    if settings.log_flush_interval_s <= 0 or settings.log_stop_timeout_s < 0:
        raise ConfigError("log_flush_interval_s must be > 0 and log_stop_timeout_s >= 0")
    if settings.log_write_rows < 0:
        raise ConfigError(f"log_write_rows must be >= 0, got {settings.log_write_rows}")
    if settings.log_buffer_records < 1:
        raise ConfigError("log_buffer_records must be at least 1")
    if settings.drift_interval_s < 0 or settings.drift_window < 30:
        raise ConfigError("drift_interval_s must be >= 0 and drift_window at least 30 records")
    return settings


def settings_from_env() -> ServeSettings:
    """What ``modelyard serve --workers N`` hands each worker process."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise ConfigError(f"{SETTINGS_ENV} is not set; start the server with `modelyard serve`")
    return settings_from(**json.loads(raw))
