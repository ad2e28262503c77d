"""Hyperparameter search: an Optuna study over ``modelyard train`` (``modelyard[tune]``).

The names below load on first use, so ``modelyard --help`` (and a serving-only
install, which has no torch) never imports Lightning or Optuna.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Param", "TrialSummary", "TuneResult", "default_storage", "parse_space", "tune"]
_WHERE = {
    "Param": "space",
    "parse_space": "space",
    "TrialSummary": "study",
    "TuneResult": "study",
    "default_storage": "storage",
    "tune": "study",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'modelyard.tune' has no attribute '{name}'")
    return getattr(import_module(f"modelyard.tune.{_WHERE[name]}"), name)
