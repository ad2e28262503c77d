"""A benchmark run end to end: payload, preflight, the generator's ceiling, each level.

Every run also measures the generator's ceiling (:mod:`modelyard.bench.ceiling`)
with the run's own request bytes; the report prints it and marks levels above
half of it, where the numbers may describe the generator more than the server.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard import __version__
from modelyard.bench.ceiling import Progress, ceiling
from modelyard.bench.connection import Endpoint
from modelyard.bench.loadgen import run_load, uses_uvloop
from modelyard.bench.payloads import (
    auth_headers,
    build_payload,
    preflight,
    resolve_model,
    tensor_payload,
)
from modelyard.bench.protocol import Protocol
from modelyard.bench.stats import SELF_TEST_DURATION_S, SELF_TEST_WARMUP_S, LevelResult
from modelyard.errors import UsageError

NEAR_CEILING = 0.5
"""A level above this fraction of the generator's ceiling is flagged."""


def _load_average() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@dataclass
class BenchReport:
    """Results of all levels, the generator's ceiling, and what the numbers depend on."""

    url: str
    model: str
    protocol: str
    payload: str
    settings: dict[str, Any]
    levels: list[LevelResult]
    ceiling: LevelResult | None
    """The generator against a trivial endpoint, at the highest level; None if not measured."""
    machine: dict[str, Any] = field(default_factory=dict)

    def near_ceiling(self, level: LevelResult) -> bool:
        """Whether ``level`` reached the share of the ceiling where the generator may limit it."""
        return (
            self.ceiling is not None and level.throughput > NEAR_CEILING * self.ceiling.throughput
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": {
                "url": self.url,
                "model": self.model,
                "protocol": self.protocol,
                "payload": self.payload,
            },
            "settings": self.settings,
            "machine": self.machine,
            "ceiling": None if self.ceiling is None else self.ceiling.to_dict(),
            "levels": [
                {**level.to_dict(), "near_ceiling": self.near_ceiling(level)}
                for level in self.levels
            ],
        }

    def table(self) -> str:
        """The report as aligned text: one row per concurrency level, then the notes."""
        load = self.machine.get("load_average_before")
        lines = [
            f"{self.url}  model {self.model}  {self.payload}",
            f"{self.settings['duration_s']:g} s per level after {self.settings['warmup_s']:g} s "
            f"warm-up, {self.settings['processes']} generator process(es)"
            + (f", load average {load[0]:.2f} before" if load else ""),
            "",
            f"{'concurrency':>11} {'req/s':>11} {'p50 ms':>8} {'p90 ms':>8} "
            f"{'p95 ms':>8} {'p99 ms':>8} {'errors':>7}",
        ]
        for level in self.levels:
            lines.append(
                f"{level.concurrency:>11} {level.throughput:>11,.1f} {_fmt_ms(level.p50_ms):>8} "
                f"{_fmt_ms(level.p90_ms):>8} {_fmt_ms(level.p95_ms):>8} "
                f"{_fmt_ms(level.p99_ms):>8} {level.errors:>7}"
                + ("  *" if self.near_ceiling(level) else "")
            )
        if self.ceiling is not None:
            lines.append(
                f"generator ceiling: {self.ceiling.throughput:,.0f} req/s at concurrency "
                f"{self.ceiling.concurrency} against a trivial endpoint "
                f"(p50 {_fmt_ms(self.ceiling.p50_ms)} ms)"
            )
        if any(self.near_ceiling(level) for level in self.levels):
            lines.append(
                f"* above {NEAR_CEILING:.0%} of the generator ceiling: the generator may be the "
                "bottleneck; try --processes 2 or a separate client machine"
            )
        for level in self.levels:
            if level.error_kinds:
                kinds = ", ".join(f"{kind} x {n}" for kind, n in level.error_kinds.items())
                lines.append(f"errors at concurrency {level.concurrency}: {kinds}")
        return "\n".join(lines)


def _machine(before: list[float] | None) -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_before": before,
        "load_average_after": _load_average(),
        "uvloop": uses_uvloop(),
        "modelyard": __version__,
    }


def bench(
    url: str,
    model: str | None,
    concurrency_levels: Sequence[int],
    duration_s: float,
    protocol: Protocol = Protocol.v2,
    *,
    warmup_s: float = 1.0,
    batch: int = 1,
    binary: bool = False,
    image: Path | None = None,
    text: str | None = None,
    shape: tuple[int, ...] | None = None,
    api_key: str | None = None,
    processes: int = 1,
    timeout_s: float = 30.0,
    measure_ceiling: bool = True,
    progress: Progress | None = None,
) -> BenchReport:
    """Benchmark ``model`` at ``url`` at each concurrency level, closed loop.

    ``url`` may omit ``http://``. ``model`` None means the one model the server
    serves. The payload is an image file (``image``), text (``text``) or, by
    default, what the server's model metadata asks for: a sample sentence for a
    text model, else a random tensor of the input's shape (``shape`` overrides).
    """
    if protocol not in Protocol.values():
        raise UsageError(f"protocol '{protocol}' is not one of {', '.join(Protocol.values())}")
    if not concurrency_levels or min(concurrency_levels) < 1 or processes < 1:
        raise UsageError("concurrency levels and --processes must be at least 1")
    url = Endpoint.parse(url).url
    load_before = _load_average()
    headers = auth_headers(api_key)
    if model is None:
        model = resolve_model(url, None, headers)
        if progress:
            progress(f"model {model}: the one {url} serves")
    payload = build_payload(
        url,
        model,
        protocol,
        headers=headers,
        batch=batch,
        binary=binary,
        image=image,
        text=text,
        shape=shape,
    )
    preflight(url, protocol, model, payload, headers)
    top = None
    if measure_ceiling:
        top = ceiling(
            [max(concurrency_levels)],
            duration_s=min(duration_s, 2.0),
            processes=processes,
            payload=payload,
            progress=progress,
        )[0]
    levels = []
    for level in concurrency_levels:
        result = run_load(
            url,
            model=model,
            protocol=protocol,
            concurrency=level,
            duration_s=duration_s,
            warmup_s=warmup_s,
            payload=payload.body,
            headers={**payload.headers, **headers},
            processes=processes,
            timeout_s=timeout_s,
        )
        if progress:
            progress(
                f"concurrency {level}: {result.throughput:,.1f} req/s, "
                f"p99 {_fmt_ms(result.p99_ms)} ms, {result.errors} errors"
            )
        levels.append(result)
    settings = {
        "concurrency": list(concurrency_levels),
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "processes": processes,
        "batch": batch,
        "timeout_s": timeout_s,
    }
    return BenchReport(
        url, model, protocol, payload.description, settings, levels, top, _machine(load_before)
    )


def self_test(
    concurrency_levels: Sequence[int] = (1, 8, 32, 64),
    duration_s: float = SELF_TEST_DURATION_S,
    *,
    warmup_s: float = SELF_TEST_WARMUP_S,
    processes: int = 1,
    progress: Progress | None = None,
) -> BenchReport:
    """The generator's ceiling as a report of its own (``modelyard bench --self-test``)."""
    load_before = _load_average()
    payload = tensor_payload(Protocol.v2, (1, 8, 8))
    levels = ceiling(
        concurrency_levels,
        duration_s=duration_s,
        warmup_s=warmup_s,
        processes=processes,
        payload=payload,
        progress=progress,
    )
    settings = {
        "concurrency": list(concurrency_levels),
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "processes": processes,
        "self_test": True,
    }
    return BenchReport(
        "trivial endpoint (generator self-test)",
        "-",
        "v2",
        payload.description,
        settings,
        levels,
        None,
        _machine(load_before),
    )
