"""The Compare page under AppTest, over a report ``monitor compare`` wrote from a
real prediction log."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from tests.monitor.test_compare import _fill

from modelyard.monitor.compare import compare
from modelyard.monitor.compare_report import default_compare_dir, write_compare
from modelyard.ui import app as app_module
from modelyard.ui.compares import latest_compare
from modelyard.ui.reports import ReportError

VIEWS = Path(app_module.__file__).with_name("views")


def test_the_page_shows_the_latest_comparison(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'log.db'}"
    _fill(url)
    write_compare(compare("m", since="1h", db_url=url))
    at = AppTest.from_file(str(VIEWS / "compare.py"), default_timeout=30).run()
    assert not at.exception, at.exception
    (agreement,) = at.metric
    assert agreement.value == "0.800"
    assert "30 requests both versions answered" in at.caption[0].value
    matrix = at.dataframe[0].value
    assert list(matrix.index) == ["cat", "dog", "eel"] and matrix.loc["cat", "dog"] == 4


def test_no_reports_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    at = AppTest.from_file(str(VIEWS / "compare.py"), default_timeout=30).run()
    assert not at.exception
    assert "modelyard monitor compare" in at.info[0].value
    (tmp_path / "monitor" / "m" / "compare" / "x").mkdir(parents=True)
    with pytest.raises(ReportError, match="no compare report for m"):
        latest_compare("m", tmp_path)
    assert default_compare_dir("m", datetime(2026, 1, 1)).name == "20260101T000000Z"
