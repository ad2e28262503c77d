"""Deployment specs and ``modelyard deploy`` (move an environment's alias).

The names below load on first use, so the CLI starts without importing MLflow.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["ENVIRONMENTS", "DeploySpec", "Deployment", "deploy", "load_spec", "parse_spec"]
_WHERE = {
    "ENVIRONMENTS": "spec",
    "DeploySpec": "spec",
    "load_spec": "spec",
    "parse_spec": "spec",
    "Deployment": "run",
    "deploy": "run",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'modelyard.deploy' has no attribute '{name}'")
    return getattr(import_module(f"modelyard.deploy.{_WHERE[name]}"), name)
