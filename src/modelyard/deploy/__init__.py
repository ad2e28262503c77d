"""Deployment specs and ``modelyard deploy`` (move an environment's alias).

The names below load on first use, so the CLI starts without importing MLflow.

Owns: deploy specs, the alias moves between environments, the alias history and
``rollback``.

May import: ``bundle``, ``promote``, ``registry``, ``serve.settings``, ``tracking``.
"""

from __future__ import annotations

from modelyard.lazy import lazy_exports

__all__ = ["ENVIRONMENTS", "DeploySpec", "Deployment", "deploy", "load_spec", "parse_spec"]
_WHERE = {
    "ENVIRONMENTS": "spec",
    "DeploySpec": "spec",
    "load_spec": "spec",
    "parse_spec": "spec",
    "Deployment": "run",
    "deploy": "run",
}

__getattr__ = lazy_exports(__name__, _WHERE)
