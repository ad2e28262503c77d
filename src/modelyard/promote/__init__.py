"""Promotion: a challenger must beat the champion before it takes an alias.

The names below load on first use, so the CLI starts without importing MLflow.

Owns: the gate (metric, latency, size, cost, per-class and shadow checks), the
measurements it compares and ``modelyard promote``.

May import: ``bundle``, ``config``, ``deploy.history``, ``evaluate``, ``monitor``,
``predictor``, ``registry_client``, ``scoring``, ``tracking``.
"""

from __future__ import annotations

from modelyard.lazy import lazy_exports

__all__ = [
    "TARGETS",
    "Check",
    "Decision",
    "ModelFigures",
    "Promotion",
    "decide",
    "gate_tag",
    "promote",
]
_WHERE = {
    "Check": "gate",
    "Decision": "gate",
    "ModelFigures": "gate",
    "decide": "gate",
    "TARGETS": "run",
    "Promotion": "run",
    "gate_tag": "run",
    "promote": "run",
}

__getattr__ = lazy_exports(__name__, _WHERE)
