"""A perf_analyzer-style load generator: ``modelyard bench`` and the same from Python.

>>> from modelyard.bench import bench
>>> report = bench("http://127.0.0.1:8000", "digits-cnn", [1, 8, 32], duration_s=5)
>>> print(report.table())
"""

from __future__ import annotations

from modelyard.bench.ceiling import ceiling, trivial_endpoint
from modelyard.bench.loadgen import run_load
from modelyard.bench.payloads import Payload, build_payload
from modelyard.bench.report import BenchReport, bench, self_test
from modelyard.bench.stats import LevelResult, parse_duration, parse_levels, percentile

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
