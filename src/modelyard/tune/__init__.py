"""Hyperparameter search: an Optuna study over ``modelyard train`` (``modelyard[tune]``).

The names below load on first use, so ``modelyard --help`` (and a serving-only
install, which has no torch) never imports Lightning or Optuna.

Owns: search spaces, the study and its storage, ``modelyard tune``.

May import: ``bundle``, ``config``, ``registry``, ``tracking``, ``train``.
"""

from __future__ import annotations

from modelyard.lazy import lazy_exports

__all__ = ["Param", "TrialSummary", "TuneResult", "default_storage", "parse_space", "tune"]
_WHERE = {
    "Param": "space",
    "parse_space": "space",
    "TrialSummary": "study",
    "TuneResult": "study",
    "default_storage": "storage",
    "tune": "study",
}

__getattr__ = lazy_exports(__name__, _WHERE)
