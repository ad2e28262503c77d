"""Names a package exports but imports only on first use (PEP 562).

``modelyard --help`` and a serving-only install must not pay for (or even have)
MLflow, Optuna, Streamlit or asyncio machinery, so subpackages re-export their public
names lazily: ``from modelyard.tune import tune`` imports Optuna, ``import
modelyard.tune`` does not. This is the one implementation every ``__init__`` uses.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` comes from ``package.homes[name]``.

    The first access imports the submodule and keeps the value in the package's
    namespace, so later accesses are plain attribute lookups.
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{home}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
