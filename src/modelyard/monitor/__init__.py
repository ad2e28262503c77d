"""Watching a model: reference profiles, the prediction log, drift tests and reports.

The profile and summary functions are numpy only and imported eagerly (training
uses them); the rest loads on first use, so ``import modelyard.monitor`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from modelyard.monitor.profile import build_reference_profile, image_summaries
from modelyard.monitor.summaries import text_summaries

_LAZY = {
    "PredictionLogger": "modelyard.monitor.predlog",
    "DriftConfig": "modelyard.monitor.drift",
    "WindowData": "modelyard.monitor.drift",
    "run_checks": "modelyard.monitor.drift",
    "check_drift": "modelyard.monitor.check",
    "Check": "modelyard.monitor.report",
    "Verdict": "modelyard.monitor.report",
    "Window": "modelyard.monitor.report",
}

__all__ = ["build_reference_profile", "image_summaries", "text_summaries", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modelyard.monitor' has no attribute '{name}'")
