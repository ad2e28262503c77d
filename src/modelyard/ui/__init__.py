"""A Streamlit web UI over running model servers (``pip install 'modelyard[ui]'``).

It only speaks HTTP to ``modelyard serve``: no torch and no ONNX Runtime here.
Names load lazily so that ``modelyard --help`` works without the [ui] extra.

Owns: the Streamlit pages (predict, drift, compare), their HTTP client, ``modelyard ui``.

May import: ``monitor``, ``serve.server`` (to find a free port).
"""

from __future__ import annotations

from modelyard.lazy import lazy_exports

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

__getattr__ = lazy_exports(__name__, _WHERE)
