"""The hints modelyard prints about tracking must work when pasted into a shell."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelyard import tracking


def test_ui_hint_names_the_venvs_mlflow_when_the_venv_is_not_on_path(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    beside = Path(sys.executable).with_name("mlflow")
    assert beside.exists(), "the test environment installs mlflow beside its python"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a shell whose venv is not activated
    hint = tracking.ui_command(tracking.default_tracking_uri())
    assert hint.startswith(f"{beside} ui --backend-store-uri sqlite:///")
    assert str(tracking.artifact_root()) in hint


def test_ui_hint_says_plain_mlflow_when_it_is_on_path(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    assert tracking.ui_command(tracking.default_tracking_uri()).startswith("mlflow ui ")
    assert tracking.ui_command("http://mlflow:5000") == "open http://mlflow:5000"
