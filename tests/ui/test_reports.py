"""Finding the latest drift report on disk: symlink or latest.json, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.ui.conftest import write_report

from modelyard.ui.reports import ReportError, latest_report, models_with_reports


@pytest.mark.parametrize("link", ["symlink", "json"])
def test_latest_report_follows_the_pointer(tmp_path: Path, link: str) -> None:
    write_report(tmp_path, "digits-cnn", drift=False, name="old", link="none")
    folder = write_report(tmp_path, "digits-cnn", drift=True, name="new", link=link)
    report = latest_report("digits-cnn", tmp_path)
    assert report.folder.resolve() == folder.resolve() and report.drift
    assert [p.name for p in report.plots] == ["ink_fraction.png"]  # missing.png is left out
    assert report.html is not None and report.checks[0]["name"] == "ink_fraction"
    assert models_with_reports(tmp_path) == ["digits-cnn"]


def test_missing_and_broken_reports_say_what_to_do(tmp_path: Path) -> None:
    assert models_with_reports(tmp_path) == []
    with pytest.raises(ReportError, match="run `modelyard monitor drift other`"):
        latest_report("other", tmp_path)
    folder = write_report(tmp_path, "m", drift=False)
    (folder / "verdict.json").write_text("{oops")
    with pytest.raises(ReportError, match="not valid JSON"):
        latest_report("m", tmp_path)
    (folder / "verdict.json").write_text(json.dumps({"model": "m"}))
    with pytest.raises(ReportError, match="no 'drift' field"):
        latest_report("m", tmp_path)
    (folder / "verdict.json").unlink()
    with pytest.raises(ReportError, match=r"has no verdict\.json"):
        latest_report("m", tmp_path)


def test_plot_names_cannot_leave_the_report_folder(tmp_path: Path) -> None:
    folder = write_report(tmp_path, "m", drift=False)
    (tmp_path / "secret.png").write_bytes(b"x")
    verdict = json.loads((folder / "verdict.json").read_text())
    verdict["plots"] = ["../../../secret.png", "ink_fraction.png"]
    (folder / "verdict.json").write_text(json.dumps(verdict))
    assert [p.name for p in latest_report("m", tmp_path).plots] == ["ink_fraction.png"]
