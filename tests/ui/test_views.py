"""The Streamlit pages under AppTest, against a real server (and a stand-in for a
text model and for errors): what a person would see, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from tests.helpers import Server, free_port
from tests.ui.conftest import Routes, text_model_routes, write_report

from modelyard.ui import app as app_module
from modelyard.ui.settings import MODEL_ENV, SERVER_ENV, STAGING_ENV

pytestmark = pytest.mark.slow

VIEWS = Path(app_module.__file__).with_name("views")


def _page(
    name: str, monkeypatch: pytest.MonkeyPatch, server: str, staging: str | None = None
) -> AppTest:
    monkeypatch.setenv(SERVER_ENV, server)
    monkeypatch.delenv(MODEL_ENV, raising=False)
    if staging:
        monkeypatch.setenv(STAGING_ENV, staging)
    else:
        monkeypatch.delenv(STAGING_ENV, raising=False)
    at = AppTest.from_file(str(VIEWS / name), default_timeout=30).run()
    assert not at.exception, at.exception
    return at


def _texts(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.success]
    return "\n".join(str(element.value) for element in parts)


def test_predict_shows_label_chart_and_version_for_an_example_digit(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("predict.py", monkeypatch, server.url)
    assert not at.metric  # nothing sent yet
    assert "Give an input on the left" in _texts(at)
    at.selectbox(key="example").set_value(0).run()
    assert not at.exception and not at.error
    (label,) = at.metric
    assert label.label == "Label" and label.value in {str(d) for d in range(10)}
    (confidence,) = at.get("progress")
    assert "confidence" in confidence.proto.text
    assert "Model **digits-cnn** version **local**" in _texts(at)
    assert len(at.get("vega_lite_chart")) == 1  # the probability bar chart


def test_staging_side_by_side_and_a_staging_server_that_is_down(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("predict.py", monkeypatch, server.url, staging=server.url)
    at.selectbox(key="example").set_value(7).run()
    production, staging = (m.value for m in at.metric)
    assert production == staging
    assert "Production and staging agree" in _texts(at)
    assert [s.value for s in at.subheader] == ["Production", "Staging"]

    down = f"http://127.0.0.1:{free_port()}"
    at = _page("predict.py", monkeypatch, server.url, staging=down)
    at.selectbox(key="example").set_value(7).run()
    assert not at.exception and len(at.metric) == 1  # production still answers
    (error,) = at.error
    assert f"cannot reach the model server at {down}" in error.value


def test_predict_with_no_server_up_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page("predict.py", monkeypatch, f"http://127.0.0.1:{free_port()}")
    errors = [e.value for e in at.error]
    assert any("No model server answered" in e for e in errors)
    assert any("cannot reach the model server" in e for e in errors)


def test_text_model_gets_a_text_box(
    stand_in: Callable[[Routes], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("predict.py", monkeypatch, stand_in(text_model_routes("fr")))
    assert not at.selectbox and not at.tabs
    at.text_area(key="text").input("bonjour à tous").run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["fr"]
    assert "Model **langid** version **4**" in _texts(at)


def test_a_server_error_on_predict_is_shown_not_raised(
    stand_in: Callable[[Routes], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = {**text_model_routes(), "/v1/models/langid:predict": (500, {"error": "boom"})}
    at = _page("predict.py", monkeypatch, stand_in(routes))
    at.text_area(key="text").input("hello").run()
    assert not at.exception and not at.metric
    assert "answered 500: boom" in at.error[0].value


def test_drift_page_shows_the_verdict_checks_and_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stand_in: Callable[[Routes], str]
) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    write_report(tmp_path, "digits-cnn", drift=True)
    write_report(tmp_path, "langid", drift=False, link="json")
    # The server serves langid, so its report is the one shown first.
    at = _page("drift.py", monkeypatch, stand_in(text_model_routes()))
    assert at.selectbox(key="model").value == "langid"
    assert "No drift on langid version 3" in _texts(at)
    at.selectbox(key="model").set_value("digits-cnn").run()
    assert not at.exception
    assert "Drift detected on digits-cnn version 3" in at.error[0].value
    assert "500 predictions" in _texts(at) and "`ink_fraction`" in _texts(at)
    (table,) = at.dataframe
    assert list(table.value["name"]) == ["ink_fraction", "predicted_label"]
    assert len(at.get("image")) == 1  # ink_fraction.png; the missing plot is left out


def test_drift_page_of_a_window_of_the_newest_records_and_no_version_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    folder = write_report(tmp_path, "digits-cnn", drift=False)
    verdict = json.loads((folder / "verdict.json").read_text())
    verdict["window"]["since"] = None  # `monitor drift --last 500`, the server's checks
    verdict["version"] = None
    (folder / "verdict.json").write_text(json.dumps(verdict))
    at = _page("drift.py", monkeypatch, f"http://127.0.0.1:{free_port()}")
    texts = _texts(at)
    assert "the newest 500 predictions, up to 2026-11-24T07:00:00Z" in texts
    assert "No drift on digits-cnn (version unknown)" in texts
    assert "None" not in texts


def test_drift_page_without_reports_or_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    at = _page("drift.py", monkeypatch, f"http://127.0.0.1:{free_port()}")
    assert "No drift reports in" in at.info[0].value
    folder = write_report(tmp_path, "m", drift=False)
    (folder / "verdict.json").write_text("{broken")
    at = _page("drift.py", monkeypatch, f"http://127.0.0.1:{free_port()}")
    assert "not valid JSON" in at.warning[0].value


def test_the_app_opens_on_the_predict_page(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SERVER_ENV, server.url)
    at = AppTest.from_file(app_module.__file__, default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "Predict"
    at.switch_page(str(VIEWS / "drift.py")).run()
    assert not at.exception and at.title[0].value == "Drift"
