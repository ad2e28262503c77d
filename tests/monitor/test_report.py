"""The verdict's JSON shape is a contract with the UI and dashboards: pin it."""

from __future__ import annotations

import json
from pathlib import Path

from modelyard.monitor.report import (
    Check,
    Verdict,
    Window,
    latest_report,
    point_latest,
    read_verdict,
    write_verdict,
)


def _verdict() -> Verdict:
    return Verdict(
        model="digits-cnn",
        version="3",
        created="2026-11-24T08:15:00+00:00",
        window=Window(records=200, since=None, until="2026-11-24T08:14:59+00:00"),
        drift=True,
        checks=[
            Check("mean_intensity", "ks", 0.9, 1e-30, 4.2, True, 0.0017),
            Check("embedding", "mmd", 0.2, 0.0005, None, True, 0.0017),
        ],
        plots=["distributions.png"],
    )


def test_verdict_json_has_the_contract_fields(home: Path) -> None:
    folder = home / "r"
    write_verdict(folder, _verdict())
    data = json.loads((folder / "verdict.json").read_text())
    assert {"model", "version", "created", "window", "drift", "checks", "plots"} <= set(data)
    assert set(data["window"]) >= {"records", "since", "until"}
    for check in data["checks"]:
        assert {"name", "kind", "statistic", "p_value", "psi", "drift"} <= set(check)
    assert data["checks"][1]["psi"] is None
    assert read_verdict(folder) == _verdict()


def test_latest_points_at_the_newest_report(home: Path) -> None:
    first, second = home / "a", home / "b"
    for folder in (first, second):
        write_verdict(folder, _verdict())
        point_latest("digits-cnn", folder)
    base = home / "monitor" / "digits-cnn"
    assert json.loads((base / "latest.json").read_text()) == {"path": str(second.resolve())}
    assert (base / "latest").resolve() == second.resolve()
    assert (base / "latest" / "verdict.json").exists()
    assert latest_report("digits-cnn") == second.resolve()
    assert latest_report("unknown") is None


def test_a_window_without_a_start_or_a_version_reads_in_words_not_none(tmp_path: Path) -> None:
    from dataclasses import replace

    from modelyard.monitor.plots import write_html
    from modelyard.monitor.report import describe_model, describe_window

    newest = Window(records=500, since=None, until="2026-11-24T08:14:59+00:00")
    assert describe_window(newest) == "the newest 500 predictions, up to 2026-11-24T08:14:59+00:00"
    assert describe_window(replace(newest, since="2026-11-24T07:00:00+00:00")) == (
        "500 predictions from 2026-11-24T07:00:00+00:00 to 2026-11-24T08:14:59+00:00"
    )
    assert describe_window({"records": 0, "since": None, "until": None}) == "no predictions"
    # verdict.json as another writer (or an older modelyard) may leave it
    assert describe_window({"since": None}) == "the newest predictions"
    assert describe_model("digits-cnn", "3") == "digits-cnn version 3"
    assert describe_model("digits-cnn", None) == "digits-cnn (version unknown)"

    page = write_html(tmp_path, replace(_verdict(), window=newest)).read_text()
    assert "the newest 500 predictions, up to 2026-11-24T08:14:59+00:00" in page
    assert "None" not in page
