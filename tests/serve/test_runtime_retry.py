"""A version that failed to load is tried again with back-off, not rejected for good:
a load that failed for a passing reason (found: two processes filling one bundle cache
at once) heals, and a shadow whose first load failed loads even where the server does
not poll."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

import pytest

from modelyard.serve import runtime as runtime_module
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.runtime import LoadBackoff, ModelRuntime
from modelyard.serve.settings import settings_from


@dataclass
class _Loaded:
    name: str
    version: str


def _flaky_shadow(
    monkeypatch: pytest.MonkeyPatch, model: str, poll_s: float, target: str | None, failures: int
) -> tuple[ModelRuntime, list[tuple[float, str]]]:
    """A shadow runtime following ``model`` (its alias at ``target``; None: pinned)
    whose first ``failures`` loads fail, then load; and the list its attempts go to."""
    settings = settings_from(model=model, poll_interval_s=poll_s)
    runtime = ModelRuntime(settings, ServerMetrics(), role="shadow")
    monkeypatch.setattr(runtime_module, "_resolve", lambda uri, settings: target)
    attempts: list[tuple[float, str]] = []

    async def load(uri: str) -> _Loaded:
        attempts.append((time.monotonic(), uri))
        if len(attempts) <= failures:
            raise OSError("Directory not empty")  # as the cache race raised it
        return _Loaded("digits-cnn", uri.rsplit("/", 1)[-1])

    monkeypatch.setattr(runtime, "_load", load)
    return runtime, attempts


async def _start_until_loaded(runtime: ModelRuntime, attempts: list[tuple[float, str]]) -> None:
    """Start ``runtime`` as a shadow starts (its first load fails here), then wait up
    to 10 s for a version to load."""
    await runtime.start_optional()
    assert runtime.current is None and "not loaded" in (runtime.last_reload_error or "")
    deadline = time.monotonic() + 10
    while runtime.current is None:
        assert time.monotonic() < deadline, attempts
        await asyncio.sleep(0.01)


def test_the_same_version_waits_a_doubling_pause_and_a_new_one_none() -> None:
    backoff = LoadBackoff(base_s=10.0)
    assert backoff.may_try("2")
    assert backoff.failed("2") == 10.0
    assert not backoff.may_try("2") and backoff.may_try("3")  # the alias moved on
    assert backoff.failed("2") == 20.0 and backoff.failed("2") == 40.0
    assert backoff.failed("3") == 10.0  # a new version starts afresh
    for _ in range(20):
        pause = backoff.failed("3")
    assert pause == runtime_module.RETRY_MAX_S
    backoff.loaded()
    assert backoff.may_try("3")


def test_a_version_that_failed_to_load_is_tried_again_after_growing_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime, attempts = _flaky_shadow(monkeypatch, "digits-cnn@challenger", 0.02, "4", 4)

    async def scenario() -> None:
        await _start_until_loaded(runtime, attempts)
        assert runtime._poller is not None
        runtime._poller.cancel()

    asyncio.run(scenario())
    assert len(attempts) == 5 and runtime.current is not None
    assert runtime.current.version == "4" and runtime.last_reload_error is None
    assert {uri for _, uri in attempts[1:]} == {"models:/digits-cnn/4"}
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(attempts)]
    # 0.02, 0.04, 0.08, 0.16 s (each rounded up to a poll tick): growing, not every poll
    assert gaps[3] > gaps[0] * 3 and sum(gaps) >= 0.02 + 0.04 + 0.08 + 0.16 - 0.01, gaps


def test_a_shadow_whose_first_load_failed_loads_without_polling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime_module, "FIRST_LOAD_RETRY_S", 0.01)
    runtime, attempts = _flaky_shadow(monkeypatch, "digits-cnn@challenger", 0, "4", 2)

    async def scenario() -> None:
        await _start_until_loaded(runtime, attempts)
        poller = runtime._poller
        assert poller is not None
        await asyncio.wait_for(poller, timeout=5)  # loaded: it stops (no polling asked)
        tried = len(attempts)
        await asyncio.sleep(0.1)
        assert len(attempts) == tried

    asyncio.run(scenario())
    assert runtime.current is not None and runtime.current.version == "4"


def test_a_pinned_shadow_that_failed_is_tried_again_by_its_uri(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime_module, "FIRST_LOAD_RETRY_S", 0.01)
    runtime, attempts = _flaky_shadow(monkeypatch, "models:/digits-cnn/3", 0, None, 1)

    asyncio.run(_start_until_loaded(runtime, attempts))
    assert [uri for _, uri in attempts] == ["models:/digits-cnn/3"] * 2
