"""Compare reports on disk, as ``modelyard monitor compare`` leaves them:
``$MODELYARD_HOME/monitor/<model>/compare/<UTC time>/compare.json`` (and report.html)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.ui.reports import ReportError, monitor_dir


@dataclass(frozen=True)
class CompareReport:
    folder: Path
    data: dict[str, Any]

    @property
    def html(self) -> Path | None:
        path = self.folder / "report.html"
        return path if path.is_file() else None


def models_with_compares(home: Path | None = None) -> list[str]:
    root = monitor_dir(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "compare").is_dir())


def latest_compare(model: str, home: Path | None = None) -> CompareReport:
    """The newest compare report of ``model`` (folder names are UTC timestamps)."""
    root = monitor_dir(home) / model / "compare"
    folders = (
        sorted(p for p in root.iterdir() if (p / "compare.json").is_file()) if root.is_dir() else []
    )
    if not folders:
        raise ReportError(
            f"no compare report for {model} in {root}; run `modelyard monitor compare {model}`"
        )
    path = folders[-1] / "compare.json"
    try:
        data = json.loads(path.read_text())
    except ValueError as error:
        raise ReportError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict) or "agreement" not in data:
        raise ReportError(f"{path} is not a compare report (it has no 'agreement' field)")
    return CompareReport(folders[-1], data)
