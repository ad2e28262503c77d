"""Server settings: one typed schema, filled from defaults, ``key=value`` overrides
and the environment (for ``--workers``, where each worker re-reads them)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, get_args, get_type_hints

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
    inline_batch_max_ms: float = 2.0
    """A model so cheap that a full batch (``max_batch_size`` rows, timed at warm-up)
    takes at most this long computes every batch on the event loop instead of the
    batcher's thread: for a ~1 M-MAC CNN the thread hand-off, the GIL changing hands
    and the wake-up of the loop cost more than the call (on 2 cores, c=32: +12-38%
    images/s, benchmarks/serving/RESULTS.md). Batches still form from what queues up
    meanwhile. 0 always uses the batcher's thread; only with ``max_delay_ms=0`` and
    ``batch_workers=1``."""
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

    shadow: str = ""
    """An alias of the same model to run beside the served one, off the critical path
    (``shadow=staging``): loaded and hot-reloaded like the main alias; its
    predictions go to the log under the same request id. Empty: no shadow."""
    shadow_rate: float = 1.0
    """Share of requests (0..1) also sent to the shadow."""
    shadow_queue: int = 256
    """Requests waiting for the shadow; beyond this they are dropped and counted in
    ``modelyard_shadow_requests_total{outcome="dropped"}``, never slowing the main path."""
    shadow_threads: int = 1
    """ONNX Runtime threads of the shadow's session: few, so it leaves the CPU to the
    main model."""
    shadow_nice: int = 19
    """Nice value (0..19) of the shadow's process (with ``shadow_process``, where
    ``shadow_idle`` is off or refused), else of the thread that runs its model (Linux):
    when the CPU is short, the kernel runs the main path first, and the shadow falls
    behind and drops. 0: as the rest."""
    shadow_idle: bool = True
    """Run the shadow's process (``shadow_process``) under Linux ``SCHED_IDLE``, below
    any nice value: it gets only CPU time nothing else wants, and a main-path thread
    that wakes takes its core at once. False, or where refused: ``shadow_nice``."""
    shadow_process: bool = True
    """Run the shadow's model and write its log rows in a process of its own, fed one
    message per batch: none of its Python holds the server's GIL. False: threads of
    the server process (its model thread niced, its rows written by the server's log)."""
    canary: str = ""
    """An alias of the same model that answers a share of the traffic
    (``canary=staging``), sticky per ``X-Modelyard-Key`` header or request id."""
    canary_weight: float = 0.0
    """Share of request keys (0..1) the canary answers."""
    min_confidence: float | None = None
    """Text models: answers below this confidence get ``low_confidence_label`` instead,
    overriding the bundle's ``text.min_confidence`` (in [0, 1); empty: the bundle's).
    A request may still send its own (``/v1`` ``"min_confidence"``, v2
    ``parameters.min_confidence``)."""
    low_confidence_label: str = ""
    """Text models: the answer below the threshold, ``unknown`` or a class of the model
    (``other``); empty: the bundle's ``text.low_confidence_label``."""

    def to_env(self) -> str:
        return json.dumps(asdict(self))


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "text"}

_ALLOWED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "port": (lambda v: 0 <= v <= 65535, "a TCP port, 0..65535"),
    "workers": (lambda v: v >= 1, "at least 1"),
    "max_batch_size": (lambda v: v >= 1, "at least 1"),
    "max_delay_ms": (lambda v: v >= 0, ">= 0 (milliseconds; 0 batches only what queues up)"),
    "max_queue_rows": (lambda v: v >= 1, "at least 1"),
    "max_instances": (lambda v: v >= 1, "at least 1"),
    "max_body_bytes": (lambda v: v >= 1, "at least 1 (bytes)"),
    "request_timeout_s": (lambda v: v > 0, "> 0 (seconds)"),
    "poll_interval_s": (lambda v: v >= 0, ">= 0 (seconds; 0 disables hot reload)"),
    "intra_op_threads": (lambda v: v >= 0, ">= 0 (0 lets ONNX Runtime choose)"),
    "inline_max_ms": (lambda v: v >= 0, ">= 0 (milliseconds; 0 never runs inline)"),
    "inline_batch_max_ms": (lambda v: v >= 0, ">= 0 (milliseconds; 0 never runs batches inline)"),
    "batch_workers": (lambda v: v >= 1, "at least 1"),
    "log_sample_rate": (lambda v: 0.0 <= v <= 1.0, "within 0..1"),
    "log_flush_interval_s": (lambda v: v > 0, "> 0 (seconds)"),
    "log_write_rows": (lambda v: v >= 0, ">= 0 (0 writes only by interval)"),
    "log_buffer_records": (lambda v: v >= 1, "at least 1"),
    "log_stop_timeout_s": (lambda v: v >= 0, ">= 0 (seconds)"),
    "drift_interval_s": (lambda v: v >= 0, ">= 0 (seconds; 0 disables)"),
    "drift_window": (lambda v: v >= 30, "at least 30 (records)"),
    "shadow_rate": (lambda v: 0.0 <= v <= 1.0, "within 0..1"),
    "shadow_queue": (lambda v: v >= 1, "at least 1 (requests)"),
    "shadow_threads": (lambda v: v >= 1, "at least 1"),
    "shadow_nice": (lambda v: 0 <= v <= 19, "within 0..19"),
    "canary_weight": (lambda v: 0.0 <= v <= 1.0, "within 0..1"),
}
"""Each numeric setting's allowed values: a check (False also for NaN) and its words."""


def _keys() -> str:
    return ", ".join(f.name for f in fields(ServeSettings))


def _conversion_error(error: OmegaConfBaseException) -> ConfigError:
    """Name the key, the value given and what the key takes."""
    key = str(getattr(error, "full_key", "") or getattr(error, "key", "") or "")
    by_name = {f.name: f for f in fields(ServeSettings)}
    if key not in by_name:
        what = f"unknown serve setting '{key}'" if key else "bad serve setting"
        return ConfigError(f"{what}; valid keys: {_keys()}")
    hints = get_type_hints(ServeSettings)
    kinds = [_KINDS[t] for t in get_args(hints[key]) or (hints[key],) if t in _KINDS]
    value = getattr(error, "value", None)
    default = getattr(ServeSettings(), key)
    example = f"; e.g. {key}={str(default).lower() if isinstance(default, bool) else default}"
    return ConfigError(
        f"bad serve setting {key}={value}: {key} takes {' or '.join(kinds) or 'another value'}"
        + ("" if default in (None, "") else example)
    )


def settings_from(overrides: Sequence[str] = (), **values: object) -> ServeSettings:
    """Defaults, then keyword values, then ``key=value`` overrides, type-checked.

    Every error names the setting and the values it takes.
    """
    base = OmegaConf.structured(ServeSettings)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"bad serve setting '{item}': write key=value (e.g. max_batch_size=64); "
                f"valid keys: {_keys()}"
            )
    try:
        merged = OmegaConf.merge(
            base,
            OmegaConf.create({k: v for k, v in values.items() if v is not None}),
            OmegaConf.from_dotlist(list(overrides)),
        )
        settings = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise _conversion_error(error) from error
    assert isinstance(settings, ServeSettings)
    if not settings.model:
        raise ConfigError("nothing to serve: pass <name>@<alias> or a bundle folder")
    for key, (allowed, words) in _ALLOWED.items():
        value = getattr(settings, key)
        if not allowed(value):
            raise ConfigError(f"bad serve setting {key}={value}: {key} must be {words}")
    if settings.min_confidence is not None and not 0.0 <= settings.min_confidence < 1.0:
        raise ConfigError(
            f"bad serve setting min_confidence={settings.min_confidence}: min_confidence "
            "must be in [0, 1) (0 never relabels an answer)"
        )
    _check_second_alias(settings, "shadow")
    _check_second_alias(settings, "canary")
    if settings.shadow and settings.shadow == settings.canary:
        raise ConfigError(
            f"shadow={settings.shadow} and canary={settings.canary} name one alias: a version "
            "cannot both answer a share of clients and shadow the rest; name two aliases"
        )
    return settings


def _check_second_alias(settings: ServeSettings, key: str) -> None:
    """``shadow=``/``canary=`` name an alias of the served registry model."""
    alias = getattr(settings, key)
    if not alias:
        return
    import re

    from modelyard.bundle import ALIAS, parse_model_uri

    if not re.fullmatch(ALIAS, alias):
        raise ConfigError(
            f"bad serve setting {key}={alias}: write an alias of the same model, e.g. {key}=staging"
        )
    if not re.fullmatch(r"models:/[^/@]+@[^/@]+", parse_model_uri(settings.model)):
        raise ConfigError(
            f"{key}={alias} needs the served model given as <name>@<alias> "
            f"(got {settings.model}), so both aliases of one registered model are followed"
        )


def second_alias_uri(settings: ServeSettings, alias: str) -> str:
    """``models:/<name>@<alias>`` for the served model's name and another alias."""
    from modelyard.bundle import parse_model_uri

    name = parse_model_uri(settings.model).removeprefix("models:/").split("@")[0]
    return f"models:/{name}@{alias}"


def settings_from_env() -> ServeSettings:
    """What ``modelyard serve --workers N`` hands each worker process."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise ConfigError(f"{SETTINGS_ENV} is not set; start the server with `modelyard serve`")
    return settings_from(**json.loads(raw))
