"""Promotion: a challenger must beat the champion before it takes an alias.

The names below load on first use, so the CLI starts without importing MLflow.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'modelyard.promote' has no attribute '{name}'")
    return getattr(import_module(f"modelyard.promote.{_WHERE[name]}"), name)
