"""The epoch-metrics callback under Ctrl-C: an interrupt that arrives inside a metric
write comes after it, and the flush that Lightning's on_exception runs next does not
write that metric a second time."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from modelyard.train.callbacks import MlflowEpochMetrics


class _ClientInterruptedMidWrite:
    """An MLflow client whose first write gets a Ctrl-C while it is writing."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, int]] = []

    def log_metric(self, run_id: str, name: str, value: float, step: int) -> None:
        if not self.writes:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the signal arrives here, inside the write
        self.writes.append((name, step))


def test_a_ctrl_c_inside_a_metric_write_comes_after_it_and_nothing_is_written_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("mlflow.get_tracking_uri", lambda: "sqlite:///unused.db")
    callback = MlflowEpochMetrics("run")
    client: Any = _ClientInterruptedMidWrite()
    with pytest.raises(KeyboardInterrupt):
        callback._log(client, 0, "train_loss", 0.5)
    assert client.writes == [("train_loss", 0)]  # the write finished first
    callback._log(client, 0, "train_loss", 0.5)  # on_exception's flush, once more
    assert client.writes == [("train_loss", 0)]
