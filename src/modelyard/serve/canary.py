"""Canary traffic: a second alias of the served model answers a weighted share of
requests, chosen by a stable hash of the request's key (``X-Modelyard-Key``, else
its request id), so one key always meets one version, in every worker process and
across restarts, while the weight is unchanged.

The canary follows its alias like the main model (hot reload); while it is not
loaded, the main model answers everything.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

from prometheus_client import Counter

from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.runtime import LoadedModel, ModelRuntime
from modelyard.serve.settings import ServeSettings, second_alias_uri

KEY_HEADER = "x-modelyard-key"
"""The header that pins a client (a user, a session) to one version."""


def bucket(key: str) -> float:
    """Where ``key`` falls in [0, 1): CRC-32, not ``hash()``, which Python salts
    per process (a key would meet different versions on different workers)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) / 2**32


class Canary:
    def __init__(self, settings: ServeSettings, metrics: ServerMetrics) -> None:
        self.weight = settings.canary_weight
        canary_settings = replace(settings, model=second_alias_uri(settings, settings.canary))
        self.runtime = ModelRuntime(canary_settings, metrics, role="canary")
        self.answers = Counter(
            "modelyard_answers",
            "Requests answered, by the version (and alias role: main or canary) that served",
            ["model", "version", "role"],
            registry=metrics.registry,
        )
        self._children: dict[tuple[str, str], Counter] = {}

    def count(self, model: LoadedModel) -> None:
        """One answer by ``model`` (a cached child per version: this is per request)."""
        key = (model.version, model.role)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.answers.labels(model.name, *key)
        child.inc()

    async def start(self) -> None:
        await self.runtime.start_optional()

    def takes(self, key: str | None) -> LoadedModel | None:
        """The canary model when ``key`` falls in its share (and it is loaded)."""
        model = self.runtime.current
        if model is None or key is None or not self.runtime.ready:
            return None
        return model if bucket(key) < self.weight else None

    async def close(self) -> None:
        await self.runtime.close()
