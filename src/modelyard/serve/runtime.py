"""The protocol-free core: a loaded model behind a dynamic batcher, and hot reload.

``ModelRuntime.infer`` always goes to the current version. A reload loads and warms
the new version beside the old one, swaps one reference (atomic on the event loop),
then drains the old batcher, so requests in flight finish on the version they
started on and none fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard import bundle as bundle_io
from modelyard.bundle import INPUT_NAME, Bundle
from modelyard.errors import BundleError, UsageError
from modelyard.modality import Modality
from modelyard.modality.text import served_spec
from modelyard.serve.batcher import BatcherClosed, BatchStats, DynamicBatcher, QueueFull
from modelyard.serve.errors import Overloaded, Unavailable
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.settings import ServeSettings

logger = logging.getLogger("modelyard.serve")


@dataclass
class LoadedModel:
    bundle: Bundle
    version: str
    session: object
    output_names: list[str]
    batcher: DynamicBatcher
    modality: Modality[Any] = field(init=False)
    """The object that decodes, describes and summarises this model's inputs, chosen
    once from the bundle's kind (a field, not a property: read on every request)."""
    spec: Any = field(init=False)
    """The bundle's input spec, in the form :attr:`modality` takes."""
    role: str = "main"
    """Which alias of the server it follows: main, shadow or canary."""

    def __post_init__(self) -> None:
        self.modality = self.bundle.modality
        self.spec = self.bundle.preprocessing

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def provenance(self) -> dict[str, str]:
        """Where the served bundle came from, for the model metadata: the URI, and a
        note when the registry was down and the local cache answered."""
        found = {"source": self.bundle.source_uri}
        if self.bundle.from_cache_note:
            found["from_cache"] = self.bundle.from_cache_note
        return found


def _session(bundle: Bundle, threads: int, spinning: bool = True) -> object:
    """An ONNX Runtime session; a graph it cannot load is the user's to fix (one line)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(
            str(bundle.onnx_path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own classes (Fail, InvalidProtobuf, ...)
        detail = " ".join(str(error).split())
        raise BundleError(
            f"{bundle.name}: ONNX Runtime cannot load {bundle.onnx_path} ({detail}); "
            "export or train the model again, or serve another version"
        ) from error


def _warmup_input(bundle: Bundle, rows: int) -> np.ndarray:
    """A batch of ``rows`` valid model inputs, made by the bundle's kind."""
    return bundle.modality.warmup_input(bundle.preprocessing, rows)


def _one_row_seconds(run_batch: Callable[[np.ndarray], object], row: np.ndarray) -> float:
    """The fastest of a few model calls on ``row`` (one row: whether lone requests may
    run inline; a full batch: whether every batch may)."""
    times = []
    for _ in range(5):
        begin = time.perf_counter()
        run_batch(row)
        times.append(time.perf_counter() - begin)
    return min(times)


def load_model(
    bundle: Bundle,
    settings: ServeSettings,
    on_batch: Callable[[BatchStats], None],
    on_outputs: Callable[[Bundle, dict[str, np.ndarray]], None] | None = None,
    alone: Callable[[], bool] | None = None,
    main: bool = True,
) -> LoadedModel:
    """Open an ONNX Runtime session, warm it up and smoke-test it (blocking).

    ``on_outputs`` sees every served batch's outputs on the batcher's thread (the
    confidence histogram counts there, once per batch); warm-up runs are not shown.
    Only a ``main`` model (not a shadow's or canary's) may compute on the event loop.
    """
    session = _session(bundle, settings.intra_op_threads, settings.ort_spinning)
    output_names = [o.name for o in session.get_outputs()]  # type: ignore[attr-defined]  # onnxruntime ships no types

    def run_batch(inputs: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(output_names, session.run(None, {INPUT_NAME: inputs}), strict=True))  # type: ignore[attr-defined]  # onnxruntime ships no types

    # Warm-up at the sizes traffic will use, and a smoke test: a version that cannot
    # produce sane probabilities is never swapped in.
    for rows in sorted({1, settings.max_batch_size}):
        out = run_batch(_warmup_input(bundle, rows))
        probabilities = out.get("probabilities")
        if probabilities is None or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3):
            raise BundleError(f"{bundle.name}: smoke prediction failed (no valid probabilities)")

    single = _one_row_seconds(run_batch, _warmup_input(bundle, 1))

    def run_and_count(inputs: np.ndarray) -> dict[str, np.ndarray]:
        outputs = run_batch(inputs)
        if on_outputs is not None:
            try:
                on_outputs(bundle, outputs)
            except Exception:  # metrics must never fail a batch
                logger.exception("counting predictions failed")
        return outputs

    batcher = DynamicBatcher(
        run_and_count,
        max_batch_size=settings.max_batch_size,
        max_delay=settings.max_delay_ms / 1000.0,
        max_queue_rows=settings.max_queue_rows,
        on_batch=on_batch,
        workers=settings.batch_workers,
        inline=single * 1000.0 <= settings.inline_max_ms,
        alone=alone,
        inline_batches=main and _cheap_batches(run_batch, bundle, settings, single),
    )
    loaded = LoadedModel(bundle, bundle.version or "local", session, output_names, batcher)
    loaded.spec = served_spec(
        loaded.spec,
        bundle.kind,
        bundle.labels,
        bundle.name,
        settings.min_confidence,
        settings.low_confidence_label,
    )
    return loaded


def _cheap_batches(
    run_batch: Callable[[np.ndarray], object],
    bundle: Bundle,
    settings: ServeSettings,
    single: float,
) -> bool:
    """Whether a full batch takes at most ``inline_batch_max_ms`` (timed now), so every
    batch may compute on the event loop."""
    limit = settings.inline_batch_max_ms / 1000.0
    if settings.batch_workers != 1 or settings.max_delay_ms > 0 or single > limit:
        return False
    return _one_row_seconds(run_batch, _warmup_input(bundle, settings.max_batch_size)) <= limit


RETRY_MAX_S = 300.0
"""The longest pause before a version that failed to load is tried again."""

FIRST_LOAD_RETRY_S = 1.0
"""The first pause before a shadow or canary that failed its first load tries again,
when the server does not poll (``poll_interval_s=0``)."""


@dataclass
class LoadBackoff:
    """When a version that failed to load may be tried again: after a pause that
    doubles with each failure of the same version, from ``base_s`` up to
    :data:`RETRY_MAX_S`; a new version may be tried at once.

    A failure may pass (a registry restarting, a disk briefly full, a load starved
    of CPU), so the same version is tried again rather than rejected for good; one
    that is broken costs one attempt per pause, logged each time."""

    base_s: float
    target: str | None = None
    """What failed last: a version number, or the URI of a pinned version or folder."""
    failures: int = 0
    retry_at: float = 0.0

    def may_try(self, target: str) -> bool:
        return target != self.target or time.monotonic() >= self.retry_at

    def failed(self, target: str) -> float:
        """Count a failure of ``target``; the pause before it may be tried again."""
        self.failures = self.failures + 1 if target == self.target else 1
        self.target = target
        pause = min(self.base_s * 2.0 ** (self.failures - 1), RETRY_MAX_S)
        self.retry_at = time.monotonic() + pause
        return pause

    def loaded(self) -> None:
        self.target, self.failures = None, 0


class ModelRuntime:
    """One alias followed: loaded, warmed, polled and swapped.

    ``role`` is ``main`` for the version that answers clients; a shadow or canary
    runtime (``serve/traffic.py``) follows its own alias the same way, but leaves the
    per-server metrics to the main one, never runs inline on the event loop, and may
    start with nothing loaded (:meth:`start_optional`).
    """

    def __init__(self, settings: ServeSettings, metrics: ServerMetrics, role: str = "main"):
        self.settings = settings
        self.metrics = metrics
        self.role = role
        self.main = role == "main"
        self.current: LoadedModel | None = None
        self.ready = False
        self._poller: asyncio.Task[None] | None = None
        self.last_reload_error: str | None = None
        self.registry_unreachable = False
        """The last alias check failed; the poll backs off until one succeeds."""
        self._backoff = LoadBackoff(
            settings.poll_interval_s if settings.poll_interval_s > 0 else FIRST_LOAD_RETRY_S
        )
        self._preloaded: LoadedModel | None = None

    def _alone(self) -> bool:
        """Whether the request asking is the only one this process is handling."""
        return self.main and self.metrics.active_requests <= 1

    def _on_batch(self, stats: BatchStats) -> None:
        if self.current is not None and self.main:
            self.metrics.observe_batch(self.current.name, stats)

    def _on_outputs(self, bundle: Bundle, outputs: dict[str, np.ndarray]) -> None:
        probabilities = outputs.get("probabilities")
        if probabilities is not None and self.main:
            # Confidences per batch; the served labels per answer, by the data plane
            # (DataPlane._count_answer): a batch computed for a request that then timed
            # out was never served, and a text model's label depends on the request.
            self.metrics.observe_confidences(bundle.name, probabilities)

    def _load_blocking(self, uri: str) -> LoadedModel:
        loaded = bundle_io.load(uri, self.settings.tracking_uri)
        return load_model(
            loaded, self.settings, self._on_batch, self._on_outputs, self._alone, self.main
        )

    async def _load(self, uri: str) -> LoadedModel:
        model = await asyncio.get_running_loop().run_in_executor(None, self._load_blocking, uri)
        model.role = self.role
        await model.batcher.start()
        return model

    def preload(self) -> None:
        """Resolve, load, warm and smoke-test the model now, before any event loop runs.

        ``modelyard serve`` calls this before it hands the app to uvicorn, so a model
        that cannot be served is reported as one line (and the port is not held while
        a doomed load runs); :meth:`start` then only starts the batcher.
        """
        self._preloaded = self._load_blocking(self.settings.model)

    async def start(self) -> None:
        if self._preloaded is not None:
            self.current, self._preloaded = self._preloaded, None
            await self.current.batcher.start()
        else:
            self.current = await self._load(self.settings.model)
        if self.main:
            self.metrics.model_info.labels(self.current.name, self.current.version).set(1)
        self.ready = True
        if self.settings.poll_interval_s > 0 and self.current.bundle.version is not None:
            self._poller = asyncio.create_task(self._poll_forever())
        logger.info("serving %s version %s", self.current.name, self.current.version)
        if self.current.bundle.from_cache_note:
            logger.warning("%s", self.current.bundle.from_cache_note)

    async def start_optional(self) -> None:
        """Load the alias if it loads, else keep trying it with back-off
        (:class:`LoadBackoff`): a shadow or canary that fails never stops the server,
        and one whose first load failed for a passing reason loads once it can, even
        where the server does not poll; a new version under the alias is tried at once."""
        try:
            self.current = await self._load(self.settings.model)
            self.ready = True
            logger.info("%s: %s version %s", self.role, self.current.name, self.current.version)
        except Exception as error:
            target = self.settings.model
            with contextlib.suppress(Exception):  # the registry is down: tried again anyway
                target = await self._target() or target
            pause = self._backoff.failed(target)
            self.last_reload_error = f"{self.role} {self.settings.model} not loaded: {error}"
            logger.error(
                "%s; serving without it, trying again in %gs", self.last_reload_error, pause
            )
        if self.settings.poll_interval_s > 0:
            self._poller = asyncio.create_task(self._poll_forever())
        elif self.current is None:
            self._poller = asyncio.create_task(self._poll_forever(until_loaded=True))

    async def _target(self) -> str | None:
        """The version the alias points at now (None: a pinned version or a folder)."""
        uri = bundle_io.parse_model_uri(self.settings.model)
        loop = asyncio.get_running_loop()
        version: str | None = await loop.run_in_executor(None, _resolve, uri, self.settings)
        return version

    async def infer(self, inputs: np.ndarray) -> tuple[LoadedModel, dict[str, np.ndarray]]:
        """Run ``inputs`` (a batch of model input) through the current version."""
        for _ in range(3):
            model = self.current
            if model is None or not self.ready:
                raise Unavailable("the model is not loaded yet; retry shortly")
            try:
                # The batcher's own timer, not asyncio.wait_for: that wraps every
                # request in a task of its own (~10% of the loop's time per request).
                outputs = await model.batcher.submit(
                    inputs, timeout=self.settings.request_timeout_s
                )
                return model, outputs
            except BatcherClosed:
                if self.current is model:  # shutting down, not a swap
                    raise Unavailable("the server is shutting down") from None
                # A swap happened between reading ``current`` and submitting: retry.
            except QueueFull:
                raise Overloaded("the server is at capacity; retry after a short pause") from None
            except asyncio.TimeoutError:
                raise Unavailable(
                    f"no answer within {self.settings.request_timeout_s:g}s; "
                    "the server is overloaded"
                ) from None
        raise Unavailable("the model was swapped repeatedly; retry")

    async def reload_if_moved(self) -> bool:
        """Check the alias; load, warm and swap in a new version. True if swapped."""
        current = self.current
        if current is not None and current.bundle.version is None:
            return False
        try:
            target = await self._target()
        except Exception as error:  # registry unreachable: keep serving, say why
            self.registry_unreachable = True
            self.last_reload_error = f"alias check failed: {error}"
            logger.warning("%s", self.last_reload_error)
            return False
        if self.registry_unreachable:
            # The registry answers again: poll at the normal interval (found by
            # tests/serve/test_registry_down.py; it stayed backed off until a swap).
            logger.info("alias check works again")
            self.registry_unreachable = False
            self.last_reload_error = None
        loaded = current.version if current is not None else None
        if target is None and current is None:  # a pinned version or folder not loaded yet
            target, load_uri = self.settings.model, self.settings.model
        elif target is None or target == loaded:
            return False
        else:
            uri = bundle_io.parse_model_uri(self.settings.model)
            name = current.name if current is not None else _model_name(uri)
            load_uri = f"models:/{name}/{target}"
        if not self._backoff.may_try(target):
            return False
        try:
            new = await self._load(load_uri)
        except Exception as error:
            if self.main and current is not None:  # (the main one always has a version)
                self.metrics.reloads.labels(current.name, "failed").inc()
            pause = self._backoff.failed(target)
            self.last_reload_error = f"{self.role} version {target} not swapped in: {error}"
            serving = f"still serving version {loaded}" if loaded else "nothing loaded yet"
            logger.error("%s; %s, trying it again in %gs", self.last_reload_error, serving, pause)
            return False
        self._backoff.loaded()
        name = new.name
        self.current = new
        self.ready = True
        if self.main:
            self.metrics.model_info.labels(new.name, new.version).set(1)
            if current is not None:
                self.metrics.model_info.labels(current.name, current.version).set(0)
            self.metrics.reloads.labels(new.name, "swapped").inc()
        self.last_reload_error = None
        prefix = "" if self.main else f"{self.role}: "
        logger.info("%sswapped %s version %s -> %s", prefix, name, loaded, new.version)
        if current is not None:
            await current.batcher.close(drain=True)
        return True

    async def _poll_forever(self, until_loaded: bool = False) -> None:
        """Check the alias every poll interval; ``until_loaded``: only until a first
        version loads (a shadow or canary whose first load failed, on a server that
        does not poll), checking as often as :class:`LoadBackoff` allows."""
        interval = self._backoff.base_s
        delay = interval
        while not (until_loaded and self.current is not None):
            await asyncio.sleep(delay)
            started = time.monotonic()
            try:
                await self.reload_if_moved()
            except Exception:  # a poll that dies would never swap again: say why, go on
                logger.exception("%s: alias check failed unexpectedly", self.role)
            # Back off while the registry is unreachable, up to ten intervals.
            delay = min(delay * 2, interval * 10) if self.registry_unreachable else interval
            logger.debug("alias check took %.3fs", time.monotonic() - started)

    async def close(self) -> None:
        """Stop polling and drain: every request already accepted gets its answer."""
        self.ready = False
        if self._poller is not None:
            self._poller.cancel()
        if self.current is not None:
            await self.current.batcher.close(drain=True)


def _model_name(uri: str) -> str:
    from modelyard.registry_client import ModelRef

    ref = ModelRef.parse(uri)
    if ref is None:
        raise UsageError(f"{uri} is not a registry alias")
    return ref.name


def _resolve(uri: str, settings: ServeSettings) -> str | None:
    """The version an alias URI points at now (None for pinned versions and folders).

    One REST call or SQL query through :mod:`modelyard.registry_client`; MLflow's own
    client only for a store that module cannot read."""
    from modelyard.registry_client import ModelRef, NeedsMlflow, resolve_alias

    try:
        return resolve_alias(uri, settings.tracking_uri)
    except NeedsMlflow:
        pass
    from modelyard import tracking
    from modelyard.registry import resolve_version

    ref = ModelRef.parse(uri)
    assert ref is not None and ref.alias is not None  # resolve_alias returned otherwise
    tracking.configure(settings.tracking_uri)
    return resolve_version(ref.name, ref.alias, None)
