"""One drift check, end to end: resolve the bundle, read the window, test, report.

``modelyard monitor drift`` calls :func:`check_drift`; so can a cron job or a
notebook.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import Engine

from modelyard import bundle as bundle_io
from modelyard.bundle import BARE_NAME, Bundle
from modelyard.durations import parse_duration
from modelyard.errors import DataError, UsageError
from modelyard.monitor.drift import DriftConfig, WindowData, run_checks
from modelyard.monitor.logstore import (
    LogWindow,
    create_log_engine,
    latest_version,
    read_window,
)
from modelyard.monitor.report import (
    Verdict,
    Window,
    default_report_dir,
    iso_utc,
    point_latest,
    write_verdict,
)

DEFAULT_LAST = 1000


@dataclass(frozen=True)
class DriftRun:
    verdict: Verdict
    folder: Path


def resolve_model(model: str, engine: Engine) -> tuple[Bundle, str | None]:
    """The bundle to compare with and the logged version to read (None: every version).

    A bundle folder is compared with every version logged under its name; an alias
    or ``models:/`` URI with the version it resolves to; a bare model name with the
    version of its most recent record, as the log says.
    """
    if Path(model).exists():
        return bundle_io.read_bundle(Path(model)), None
    if BARE_NAME.match(model):
        version = latest_version(engine, model)
        if version is None:
            raise DataError(
                f"no records of model '{model}' in the prediction log; is the server logging "
                "to this database (--db)? Or pass <name>@<alias> or a bundle folder"
            )
        if not version.isdigit():
            raise UsageError(
                f"'{model}' was served from a bundle folder (version '{version}'); "
                "pass that folder instead of the name"
            )
        return bundle_io.load(f"models:/{model}/{version}"), version
    loaded = bundle_io.load(model)
    return loaded, loaded.version


def _window_data(window: LogWindow) -> WindowData:
    return WindowData(window.summaries, window.projection, window.labels, window.confidences)


def check_drift(
    model: str,
    *,
    since: str | None = None,
    last: int | None = None,
    db_url: str | None = None,
    out: Path | None = None,
    config: DriftConfig | None = None,
) -> DriftRun:
    """Compare a window of the prediction log with the bundle's reference profile.

    The window is the records of the last ``since`` (``1h``) and/or the newest
    ``last`` records (``DEFAULT_LAST`` when neither is given). Writes the report
    folder and points ``monitor/<model>/latest`` at it.
    """
    if last is not None and last < 1:
        raise UsageError(f"--last must be at least 1, got {last}")
    config = config or DriftConfig()
    span_s = parse_duration(since) if since else None
    engine = create_log_engine(db_url)
    try:
        bundle, version = resolve_model(model, engine)
        checked = time.time()
        since_s = checked - span_s if span_s is not None else None
        if since is None and last is None:
            last = DEFAULT_LAST
        window = read_window(engine, bundle.name, version=version, since=since_s, last=last)
    finally:
        engine.dispose()
    if len(window) == 0:
        which = f"version {version} of " if version else ""
        span = f" in the last {since}" if since else ""
        raise DataError(
            f"no records of {which}'{bundle.name}' in the prediction log{span}; "
            "check --db and --since, and that the server logs predictions"
        )
    profile = bundle.reference_profile
    data = _window_data(window)
    checks = run_checks(profile, data, config)
    created = datetime.fromtimestamp(checked, timezone.utc)
    logged_versions = sorted(set(window.versions))
    verdict = Verdict(
        model=bundle.name,
        version=version or ",".join(logged_versions),
        created=created.isoformat(timespec="seconds"),
        window=Window(
            records=len(window),
            since=iso_utc(since_s) if since_s is not None else None,
            until=iso_utc(float(window.times.max())),
        ),
        drift=any(c.drift for c in checks),
        checks=checks,
        alpha=config.alpha,
        min_psi=config.min_psi,
        reference_samples=int(profile.get("samples", 0)),
    )
    folder = out or default_report_dir(bundle.name, created)
    from modelyard.monitor.plots import write_html, write_plots

    verdict = replace(verdict, plots=write_plots(folder, profile, data, checks))
    write_verdict(folder, verdict)
    write_html(folder, verdict)
    point_latest(bundle.name, folder)
    return DriftRun(verdict, folder)
