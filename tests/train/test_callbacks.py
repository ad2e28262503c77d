"""The epoch-metrics callback under Ctrl-C: an interrupt that arrives inside a metric
write comes after it, and the flush that Lightning's on_exception runs next does not
write that metric a second time."""

from __future__ import annotations

import pytest
from tests.helpers import CtrlCInWrite

from modelyard.train.callbacks import MlflowEpochMetrics


def test_a_ctrl_c_inside_a_metric_write_comes_after_it_and_nothing_is_written_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("mlflow.get_tracking_uri", lambda: "sqlite:///unused.db")
    callback = MlflowEpochMetrics("run")
    ctrl_c = CtrlCInWrite()
    client = ctrl_c.client("log_metric")
    with pytest.raises(KeyboardInterrupt):
        callback._log(client, 0, "train_loss", 0.5)
    written = [("log_metric", "run", "train_loss", 0.5, 0)]
    assert ctrl_c.writes == written  # the write finished first
    callback._log(client, 0, "train_loss", 0.5)  # on_exception's flush, once more
    assert ctrl_c.writes == written
