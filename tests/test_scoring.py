"""``modelyard evaluate --log`` (``scoring.evaluate_model``): its MLflow run under Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from tests.helpers import ctrl_c_inside
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.scoring import evaluate_model


@pytest.mark.slow
def test_a_ctrl_c_in_the_evaluation_runs_opening_writes_ends_it_killed(
    trained: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pressed inside the tags' write: unheld, the interrupt cut that write short (on
    # SQLite the store stayed locked, so the run's end waited out the busy timeout)
    # and the run kept no tags.
    ctrl_c_inside(monkeypatch, mlflow, "set_tags", every_call=True)
    with pytest.raises(KeyboardInterrupt):
        evaluate_model(str(trained.bundle_path), log=True)
    assert mlflow.active_run() is None
    client = MlflowClient()
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="tags.`modelyard.kind` = 'evaluation'",
    )
    assert len(runs) == 1
    assert runs[0].info.status == "KILLED"
    assert runs[0].data.tags["modelyard.model"] == "digits-cnn"


@pytest.mark.slow
def test_a_ctrl_c_held_through_the_runs_end_says_the_evaluation_is_logged(
    trained: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctrl_c_inside(monkeypatch, mlflow, "end_run", every_call=True)
    # Through the command, which says what the interrupt kept.
    result = CliRunner().invoke(app, ["evaluate", str(trained.bundle_path)])
    assert result.exit_code == 130
    assert "had finished: the evaluation is logged there whole" in result.output
    client = MlflowClient()
    (run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="tags.`modelyard.kind` = 'evaluation'",
    )
    assert run.info.status == "FINISHED" and "test_accuracy" in run.data.metrics
