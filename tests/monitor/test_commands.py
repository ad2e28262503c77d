"""``modelyard monitor drift`` end to end: log -> verdict, report, exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.docs.screenshots import keep_for_docs, screenshot_page
from tests.helpers import run_cli
from tests.monitor.conftest import HeldOut, log_window, take
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.monitor.report import PNG_SUFFIX, REPORT_FILE, VERDICT_FILE

pytestmark = pytest.mark.slow

runner = CliRunner()


def _drift(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["monitor", "drift", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_in_distribution_traffic_passes_with_a_full_report(
    held_out: HeldOut, trained, use_session_home: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    rows = np.random.default_rng(0).choice(len(held_out.images), 200, replace=False)
    log_window(
        url, "digits-cnn", trained.model_version, take(held_out.observe(held_out.images), rows)
    )
    out = tmp_path / "report"
    code, output = _drift(
        f"models:/digits-cnn/{trained.model_version}", "--db", url, "--since", "1h",
        "--json", "--out", str(out),
    )  # fmt: skip
    assert code == 0, output
    verdict = json.loads(output)
    assert verdict["drift"] is False and verdict["version"] == trained.model_version
    assert verdict["window"]["records"] == 200 and verdict["window"]["since"] is not None
    assert {c["name"] for c in verdict["checks"]} == {
        "mean_intensity", "std_intensity", "ink_fraction", "confidence", "labels", "embedding",
    }  # fmt: skip
    assert json.loads((out / VERDICT_FILE).read_text())["checks"] == verdict["checks"]
    assert (out / REPORT_FILE).read_text().count("<img") == len(verdict["plots"]) == 3
    for plot in verdict["plots"]:
        assert plot.endswith(PNG_SUFFIX) and (out / plot).read_bytes()[:4] == b"\x89PNG"
    latest = use_session_home / "monitor" / "digits-cnn" / "latest"
    assert latest.resolve() == out.resolve()


def test_inverted_images_exit_1_and_write_the_default_report_folder(
    held_out: HeldOut, trained, use_session_home: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    inverted = held_out.observe(255 - held_out.images[:150])
    log_window(url, "digits-cnn", trained.model_version, inverted)
    # A bare model name: the log says which version (and so which bundle) to use.
    code, output = _drift("digits-cnn", "--db", url, "--last", "100")
    assert code == 1, output
    assert "DRIFT" in output and "mean_intensity" in output
    reports = use_session_home / "monitor" / "digits-cnn" / "reports"
    newest = max(reports.iterdir())
    assert len(newest.name) == len("20261124T081500Z") and newest.name.endswith("Z")
    verdict = json.loads((newest / VERDICT_FILE).read_text())
    assert verdict["drift"] is True and verdict["window"]["records"] == 100
    assert verdict["window"]["since"] is None
    assert json.loads((reports.parent / "latest.json").read_text())["path"] == str(newest)
    # The docs show this report (docs/monitoring.md): a real drift, rendered by Chromium.
    shot = screenshot_page(newest / REPORT_FILE, tmp_path / "report.png")
    keep_for_docs(shot, "drift-report.png")


def test_user_errors_exit_2_with_a_reason(trained, use_session_home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    bad_since = run_cli("monitor", "drift", "digits-cnn@candidate", "--since", "5x", "--db", url)
    assert bad_since.returncode == 2 and "not a positive duration" in bad_since.stderr
    empty = run_cli("monitor", "drift", "digits-cnn@candidate", "--db", url)
    assert empty.returncode == 2 and "no records of version" in empty.stderr
