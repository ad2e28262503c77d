"""Watching a model: reference profiles, the prediction log, drift tests and reports.

The profile and summary functions are numpy only and imported eagerly (training
uses them); the rest loads on first use, so ``import modelyard.monitor`` stays cheap.

Owns: reference profiles and summaries, the prediction log, drift checks, feedback
labels, live performance, version comparison and their reports.

May import: ``bundle``; never torch, and MLflow never (it reads the log store).
"""

from __future__ import annotations

from modelyard.lazy import lazy_exports
from modelyard.monitor.profile import build_reference_profile, image_summaries
from modelyard.monitor.summaries import text_summaries

_LAZY = {
    "PredictionLogger": "predlog",
    "DriftConfig": "drift",
    "WindowData": "drift",
    "run_checks": "drift",
    "check_drift": "check",
    "Check": "report",
    "Verdict": "report",
    "Window": "report",
}

__all__ = ["build_reference_profile", "image_summaries", "text_summaries", *_LAZY]

__getattr__ = lazy_exports(__name__, _LAZY)
