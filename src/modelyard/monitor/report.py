"""The drift verdict: its JSON shape (the one place it is defined) and where it is written.

A drift check writes a report folder::

    $MODELYARD_HOME/monitor/<model>/reports/<20261124T081500Z>/
        verdict.json    the Verdict below, as JSON
        report.html     the checks as a table, with the plots
        *.png           the plots the verdict lists under "plots"

and points ``$MODELYARD_HOME/monitor/<model>/latest`` (a symlink) and
``latest.json`` (``{"path": <folder>}``, for platforms without symlinks) at it.
Readers (the UI, dashboards, cron jobs) rely on these names and fields.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from modelyard.paths import home_dir

VERDICT_FILE = "verdict.json"
REPORT_FILE = "report.html"
LATEST_LINK = "latest"
LATEST_FILE = "latest.json"
PNG_SUFFIX = ".png"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Check:
    """One statistical test of the window against the reference profile."""

    name: str
    """A summary feature (``mean_intensity``, ...), ``confidence``, ``labels`` or ``embedding``."""
    kind: str
    """``ks`` (two-sample Kolmogorov-Smirnov), ``chi2`` (homogeneity) or ``mmd`` (permutation)."""
    statistic: float
    """KS D, chi-square statistic, or squared MMD."""
    p_value: float
    psi: float | None
    """Population stability index (effect size); None where it does not apply (embedding)."""
    drift: bool
    """``p_value`` below ``p_threshold`` and, where a PSI exists, PSI at least ``min_psi``."""
    p_threshold: float
    """The Bonferroni-corrected level this check was held to."""


@dataclass(frozen=True)
class Window:
    records: int
    since: str | None
    """ISO-8601 UTC of the window's start when a time window was asked for, else None."""
    until: str
    """ISO-8601 UTC of the newest record (or of the check, for an empty window)."""


@dataclass(frozen=True)
class Verdict:
    model: str
    version: str
    created: str
    """ISO-8601 UTC time of the check."""
    window: Window
    drift: bool
    """True when any check found drift."""
    checks: list[Check]
    plots: list[str] = field(default_factory=list)
    """File names of the PNG plots in the report folder."""
    alpha: float = 0.01
    """Family-wise false-alarm rate the checks were corrected for."""
    min_psi: float = 0.0
    reference_samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            **{
                **data,
                "window": Window(**data["window"]),
                "checks": [Check(**c) for c in data["checks"]],
            }
        )


def describe_window(window: Window | Mapping[str, Any]) -> str:
    """The records a verdict tested, in words, for reports and the UI.

    A window asked for by time reads "500 predictions from <since> to <until>"; one of
    the newest records (``--last``, the server's periodic check) has no start, and
    reads "the newest 500 predictions, up to <until>", never "from None".
    """
    data = asdict(window) if isinstance(window, Window) else window
    records, since, until = data.get("records"), data.get("since"), data.get("until")
    count = f"{records} predictions" if isinstance(records, int) else "predictions"
    if records == 0:
        return f"no predictions up to {until}" if until else "no predictions"
    if since:
        return f"{count} from {since} to {until or 'now'}"
    newest = f"the newest {count}" if isinstance(records, int) else "the newest predictions"
    return f"{newest}, up to {until}" if until else newest


def describe_model(model: object, version: object) -> str:
    """``digits-cnn version 3``; a verdict without a version says so instead of "None"."""
    return (
        f"{model} version {version}" if version not in (None, "") else f"{model} (version unknown)"
    )


def iso_utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def monitor_dir(model: str) -> Path:
    return home_dir() / "monitor" / model


def default_report_dir(model: str, created: datetime) -> Path:
    """``$MODELYARD_HOME/monitor/<model>/reports/<UTC timestamp>``."""
    return monitor_dir(model) / "reports" / created.strftime(TIMESTAMP_FORMAT)


def write_verdict(folder: Path, verdict: Verdict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / VERDICT_FILE
    path.write_text(json.dumps(verdict.to_dict(), indent=2))
    return path


def read_verdict(folder: Path) -> Verdict:
    return Verdict.from_dict(json.loads((folder / VERDICT_FILE).read_text()))


def point_latest(model: str, folder: Path) -> None:
    """Point ``monitor/<model>/latest`` and ``latest.json`` at ``folder`` (atomically)."""
    base = monitor_dir(model)
    base.mkdir(parents=True, exist_ok=True)
    target = folder.resolve()
    pointer = base / f".{LATEST_FILE}.tmp"
    pointer.write_text(json.dumps({"path": str(target)}))
    os.replace(pointer, base / LATEST_FILE)
    link = base / f".{LATEST_LINK}.tmp"
    try:
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
        os.replace(link, base / LATEST_LINK)
    except OSError:  # no symlinks here (some Windows setups): latest.json suffices
        pass


def latest_report(model: str) -> Path | None:
    """The folder of ``model``'s most recent report, or None."""
    pointer = monitor_dir(model) / LATEST_FILE
    if not pointer.exists():
        return None
    return Path(json.loads(pointer.read_text())["path"])
