"""A perf_analyzer-style load generator: ``modelyard bench`` and the same from Python.

>>> from modelyard.bench import bench
>>> report = bench("http://127.0.0.1:8000", "digits-cnn", [1, 8, 32], duration_s=5)
>>> print(report.table())

The names below load on first use, so the ``modelyard`` command (which imports
:mod:`modelyard.bench.commands`) does not pay for asyncio, urllib and the engine
unless it benchmarks.

Owns: payloads, the load loop, latency statistics, the ceiling probe and the report.

May import: ``serve.codecs`` (the v2 wire format); it talks to a server over HTTP
only, never loading a model itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.lazy import lazy_exports

if TYPE_CHECKING:
    from modelyard.bench.ceiling import ceiling, trivial_endpoint
    from modelyard.bench.loadgen import run_load
    from modelyard.bench.payloads import Payload, build_payload
    from modelyard.bench.report import BenchReport, bench, self_test
    from modelyard.bench.stats import LevelResult, parse_duration, parse_levels, percentile

_HOMES = {
    "BenchReport": "report",
    "LevelResult": "stats",
    "Payload": "payloads",
    "bench": "report",
    "build_payload": "payloads",
    "ceiling": "ceiling",
    "parse_duration": "stats",
    "parse_levels": "stats",
    "percentile": "stats",
    "run_load": "loadgen",
    "self_test": "report",
    "trivial_endpoint": "ceiling",
}

__all__ = [
    "BenchReport",
    "LevelResult",
    "Payload",
    "bench",
    "build_payload",
    "ceiling",
    "parse_duration",
    "parse_levels",
    "percentile",
    "run_load",
    "self_test",
    "trivial_endpoint",
]

__getattr__ = lazy_exports(__name__, _HOMES)
