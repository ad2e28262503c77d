"""Drift reports on disk, as ``modelyard monitor drift`` leaves them.

Layout: ``$MODELYARD_HOME/monitor/<model>/latest`` is a symlink to a report folder,
or ``latest.json`` holds ``{"path": ...}`` naming one (absolute, or relative to the
model's folder). A report folder holds ``verdict.json``, ``report.html`` and PNGs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.paths import home_dir


class ReportError(Exception):
    """No readable drift report where one was looked for."""


@dataclass(frozen=True)
class DriftReport:
    folder: Path
    verdict: dict[str, Any]

    @property
    def drift(self) -> bool:
        return bool(self.verdict.get("drift"))

    @property
    def checks(self) -> list[dict[str, Any]]:
        return list(self.verdict.get("checks", []))

    @property
    def plots(self) -> list[Path]:
        """The verdict's PNGs that exist in the folder (names cannot leave it)."""
        names = [Path(str(name)).name for name in self.verdict.get("plots", [])]
        return [self.folder / name for name in names if (self.folder / name).is_file()]

    @property
    def html(self) -> Path | None:
        path = self.folder / "report.html"
        return path if path.is_file() else None


def monitor_dir(home: Path | None = None) -> Path:
    return (home or home_dir()) / "monitor"


def models_with_reports(home: Path | None = None) -> list[str]:
    root = monitor_dir(home)
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if (p / "latest").exists() or (p / "latest.json").is_file()
    )


def _latest_folder(model_dir: Path) -> Path:
    link = model_dir / "latest"
    if link.exists():
        return link.resolve()
    pointer = model_dir / "latest.json"
    if pointer.is_file():
        try:
            target = Path(json.loads(pointer.read_text())["path"])
        except (ValueError, KeyError, TypeError):
            raise ReportError(f'{pointer} must hold {{"path": <report folder>}}') from None
        return target if target.is_absolute() else model_dir / target
    raise ReportError(
        f"no drift report for this model in {model_dir}; "
        f"run `modelyard monitor drift {model_dir.name}` first"
    )


def latest_report(model: str, home: Path | None = None) -> DriftReport:
    """The newest report of ``model``; :class:`ReportError` says what is missing."""
    folder = _latest_folder(monitor_dir(home) / model)
    verdict_path = folder / "verdict.json"
    if not verdict_path.is_file():
        raise ReportError(f"the latest report folder {folder} has no verdict.json")
    try:
        verdict = json.loads(verdict_path.read_text())
    except ValueError as error:
        raise ReportError(f"{verdict_path} is not valid JSON: {error}") from None
    if not isinstance(verdict, dict) or "drift" not in verdict:
        raise ReportError(f"{verdict_path} is not a drift verdict (it has no 'drift' field)")
    return DriftReport(folder=folder, verdict=verdict)
