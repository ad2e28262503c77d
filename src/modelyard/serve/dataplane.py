"""The protocol-neutral data plane: loaded models and decoded requests in, plain
results out, :class:`~modelyard.serve.errors.ClientError` for what a client got wrong.

It knows nothing of HTTP: the Starlette routes (:mod:`modelyard.serve.routes`) and
the raw-ASGI fast path (:mod:`modelyard.serve.fastpath`) turn bytes and headers into
these calls and the results back into responses, and map errors to status codes in
one place (:func:`modelyard.serve.routes.error_response`). What differs between
input kinds (decoding, the ``/v1`` answer, metadata) is the model's
:class:`~modelyard.modality.Modality`; the data plane only sequences it: look the
model up, decode, infer through the batcher, log, and describe the answer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard import __version__
from modelyard.modality import Batch
from modelyard.modality.base import AnswerRule
from modelyard.serve.canary import Canary
from modelyard.serve.codecs import v2
from modelyard.serve.errors import ClientError, NotFound, Unavailable
from modelyard.serve.monitoring import ServingMonitor
from modelyard.serve.runtime import LoadedModel, ModelRuntime
from modelyard.serve.shadow import Shadow, ShadowWork


# Built once per request: slots and no frozen __init__ (object.__setattr__ per field).
@dataclass(slots=True)
class InferResponse:
    """A v2 answer before encoding: the version that answered and its outputs."""

    model_name: str
    model_version: str
    outputs: dict[str, np.ndarray]


@dataclass(slots=True)
class PredictResponse:
    """A ``/v1`` answer: the JSON document the model's kind wrote, and the request id."""

    body: bytes
    request_id: str


class DataPlane:
    """Model lookup, metadata and inference for every protocol the server speaks."""

    def __init__(
        self,
        runtime: ModelRuntime,
        monitor: ServingMonitor,
        max_rows: int,
        shadow: Shadow | None = None,
        canary: Canary | None = None,
    ) -> None:
        self.runtime = runtime
        self.monitor = monitor
        self.metrics = monitor.metrics
        self.max_rows = max_rows
        self.shadow = shadow
        self.canary = canary

    # -- health and metadata --------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.runtime.ready

    @staticmethod
    def server_metadata() -> dict[str, Any]:
        return {"name": "modelyard", "version": __version__, "extensions": ["binary_tensor_data"]}

    def served_name(self) -> str:
        """The name of the model this server serves (503 before it is loaded)."""
        model = self.runtime.current
        if model is None:
            raise Unavailable("the model is not loaded yet; retry shortly")
        return model.name

    def model(self, name: str, version: str | None = None, key: str | None = None) -> LoadedModel:
        """The loaded model ``name`` (and ``version``, if given); 404 for any other.

        With a canary, a request without a version goes to the version its ``key``
        falls on (sticky); naming the canary's version asks for it directly.
        """
        model = self.runtime.current
        if model is None:
            raise Unavailable("the model is not loaded yet; retry shortly")
        if name != model.name:
            raise NotFound(f"model '{name}' is not served here; this server serves '{model.name}'")
        if self.canary is not None:
            canary = self.canary.runtime.current
            if version is None:
                chosen = self.canary.takes(key)
                if chosen is not None:
                    return chosen
            elif canary is not None and version == canary.version:
                return canary
        if version is not None and version != model.version:
            raise NotFound(f"version {version} of '{name}' is not loaded; loaded: {model.version}")
        return model

    def model_metadata(self, model: LoadedModel) -> dict[str, Any]:
        """v2 model metadata: what a client sends (the kind says), and the outputs."""
        modality, spec = model.modality, model.spec
        return {
            "name": model.name,
            "versions": [model.version],
            "platform": "onnxruntime_onnx",
            "inputs": modality.metadata_inputs(spec),
            "outputs": modality.metadata_outputs(model.session.get_outputs()),  # type: ignore[attr-defined]  # the session's type is a Protocol without ORT's full API
            "parameters": {
                "labels": list(model.bundle.labels),
                "task": model.bundle.task,
                "kind": modality.kind,
                **modality.metadata_parameters(spec),
                **model.provenance,
            },
        }

    def model_ready(self, model: LoadedModel) -> dict[str, Any]:
        return {"name": model.name, "ready": self.runtime.ready}

    # -- inference ------------------------------------------------------------------

    async def infer(
        self,
        model: LoadedModel,
        request: v2.InferRequest,
        request_id: str | None = None,
        started: float | None = None,
    ) -> InferResponse:
        """A decoded v2 request -> the outputs of the version that answered.

        ``request_id`` (the request's own ``id``, else a header's) names the rows in
        the prediction log; one is made up only when the log needs it. ``started`` is
        when the request arrived (the logged latency), by default now.
        """
        started = time.perf_counter() if started is None else started
        batch = model.modality.decode_v2(request, model.spec, self.max_rows, model.name)
        # parameters.min_confidence (text models): checked before inference, answered
        # as a `label` BYTES output of the served labels
        threshold = model.modality.v2_label_threshold(request.parameters, model.spec)
        known = model.output_names if threshold is None else [*model.output_names, "label"]
        unknown = [n for n, _ in request.outputs or [] if n not in known]
        if unknown:
            raise ClientError(f"unknown output(s) {unknown}; this model has {known}")
        served, outputs = await self._runtime(model).infer(batch.model_input)
        if threshold is not None:
            probabilities = outputs["probabilities"]
            labels = served.modality.v2_labels(
                threshold, probabilities, served.bundle.labels, served.spec
            )
            outputs = {**outputs, "label": labels}
        rule = self._answer_rule(served, batch, threshold)
        self._count_answer(served, outputs, rule)
        if self.monitor.log is not None or self.shadow is not None:
            # the id only matters to the prediction log
            request_id = request.id or request_id or new_request_id()
            logged = self.monitor.observe(
                served,
                request_id,
                batch.observed,
                outputs,
                time.perf_counter() - started,
                rule=rule,
            )
            shadow = self._shadow_for(served, logged)
            if shadow is not None:
                shadow.offer(
                    ShadowWork(
                        request_id,
                        served,
                        batch,
                        lambda m: m.modality.decode_v2(request, m.spec, self.max_rows, m.name),
                        rule,
                    )
                )
        return InferResponse(served.name, served.version, outputs)

    async def predict(
        self,
        model: LoadedModel,
        body: bytes,
        content_type: str,
        request_id: str | None = None,
        started: float | None = None,
    ) -> PredictResponse:
        """A ``/v1`` predict body (JSON, as the model's kind reads it) -> the answer."""
        started = time.perf_counter() if started is None else started
        request_id = request_id or new_request_id()
        batch = model.modality.decode_v1(body, content_type, model.spec, self.max_rows, model.name)
        return await self._predict(
            model,
            batch,
            request_id,
            started,
            lambda m: m.modality.decode_v1(body, content_type, m.spec, self.max_rows, m.name),
        )

    async def predict_files(
        self,
        model: LoadedModel,
        files: list[bytes],
        names: Sequence[str],
        request_id: str | None = None,
        started: float | None = None,
    ) -> PredictResponse:
        """Uploaded files (``/v1`` multipart) -> the answer, for kinds that take files."""
        started = time.perf_counter() if started is None else started
        request_id = request_id or new_request_id()
        batch = model.modality.decode_files(files, names, model.spec)
        return await self._predict(
            model,
            batch,
            request_id,
            started,
            lambda m: m.modality.decode_files(files, names, m.spec),
        )

    def _runtime(self, model: LoadedModel) -> ModelRuntime:
        """The runtime that follows ``model``'s alias (the canary's, or the main one)."""
        if model.role == "canary" and self.canary is not None:
            return self.canary.runtime
        return self.runtime

    @staticmethod
    def _answer_rule(
        served: LoadedModel, batch: Batch, requested: float | None = None
    ) -> AnswerRule | None:
        """How the answers were labelled: a text model's threshold (``requested`` by a
        v2 request, the /v1 request's own, or the served one) and its low-confidence
        label. Other kinds: None, at the cost of one attribute read."""
        modality = served.modality
        if not modality.thresholded:
            return None
        return modality.answer_rule(batch, served.spec, requested)

    def _count_answer(
        self, served: LoadedModel, outputs: dict[str, np.ndarray], rule: AnswerRule | None
    ) -> None:
        """The one place an answer is counted, once per request on every path (/v1 and
        v2, any kind, inline or batched), after it was computed and before it is sent:
        ``modelyard_predictions`` by the labels the client is served (under ``rule``),
        under the version that served them, main or canary; ``modelyard_answers`` with
        a canary. A shadow's answers are served to no one, so never counted here."""
        if self.canary is not None:
            self.canary.count(served)
        self.metrics.count_served(
            served.name, served.version, served.bundle.labels, outputs["probabilities"], rule
        )

    def _shadow_for(self, served: LoadedModel, logged: bool) -> Shadow | None:
        """The shadow, when this answer is one it mirrors: a sampled share of the main
        version's answers, while its queue has room (asked before the work item and
        its decode closure are built: at saturation most sampled answers are drops).
        A canary's answers are not mirrored: the shadow is compared with the main
        version, and the canary is an experiment of its own."""
        shadow = self.shadow
        if shadow is None or served.role == "canary" or not shadow.admit(logged):
            return None
        return shadow

    async def _predict(
        self,
        model: LoadedModel,
        batch: Batch,
        request_id: str,
        started: float,
        decode: Callable[[LoadedModel], Batch],
    ) -> PredictResponse:
        served, outputs = await self._runtime(model).infer(batch.model_input)
        rule = self._answer_rule(served, batch)
        self._count_answer(served, outputs, rule)
        logged = self.monitor.observe(
            served, request_id, batch.observed, outputs, time.perf_counter() - started, rule=rule
        )
        shadow = self._shadow_for(served, logged)
        if shadow is not None:
            shadow.offer(ShadowWork(request_id, served, batch, decode, rule))
        body = served.modality.encode_v1(
            batch,
            outputs["probabilities"],
            served.bundle.labels,
            served.name,
            served.version,
            request_id,
            served.spec,
        )
        return PredictResponse(body, request_id)


def new_request_id() -> str:
    """An id for a request that came without one: 32 hex digits, the first 12 the
    milliseconds since 1970 and the other 20 random (80 bits, like most of a UUID4's).

    Time first, so the prediction log's index on (model, request_id) grows at its end
    instead of at a random page per row: with random ids SQLite's inserts cost the
    log thread 10-19 us of CPU a row, growing with the table, against a flat ~5 us
    (50,000-200,000 rows, 512 a commit, 2026-12-06). ``os.urandom`` rather than
    ``uuid.uuid4`` also saves ~1.5 us a request on the event loop."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"
