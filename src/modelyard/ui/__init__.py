"""A Streamlit web UI over running model servers (``pip install 'modelyard[ui]'``).

It only speaks HTTP to ``modelyard serve``: no torch and no ONNX Runtime here.
Names load lazily so that ``modelyard --help`` works without the [ui] extra.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "ModelInfo": "client",
    "Prediction": "client",
    "ServerClient": "client",
    "ServerError": "client",
    "DriftReport": "reports",
    "ReportError": "reports",
    "latest_report": "reports",
    "UISettings": "settings",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'modelyard.ui' has no attribute {name!r}")
    return getattr(import_module(f"modelyard.ui.{_WHERE[name]}"), name)
