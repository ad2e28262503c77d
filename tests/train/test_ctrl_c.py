"""Ctrl-C (SIGINT) during `modelyard train`: exit 130 with one line naming the exact
resume command, the MLflow run KILLED, and `--resume` finding it from any task."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tests.conftest import FAST
from tests.helpers import run_cli

from modelyard import tracking

pytestmark = pytest.mark.slow
EPOCHS = 6  # enough that training is still running when the signal arrives
OVERRIDES = [*FAST, f"train.max_epochs={EPOCHS}", "train.early_stopping_patience=10"]


def _epochs_logged(run_id: str) -> int:
    tracking.configure()
    return len(MlflowClient().get_metric_history(run_id, "val_loss"))


def _interrupt_after_first_epoch(home: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    exe = Path(sys.executable).with_name("modelyard")
    process = subprocess.Popen(
        [str(exe), "train", *OVERRIDES],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    run_id = None
    while time.monotonic() < deadline and process.poll() is None:
        runs = list((home / "runs").iterdir()) if (home / "runs").exists() else []
        # A fresh home: the only run. Its validation is logged as its checkpoint is
        # written, so wait for the file too (a resume needs it).
        if runs and _epochs_logged(runs[0].name) >= 1 and any(runs[0].rglob("*.ckpt")):
            run_id = runs[0].name
            time.sleep(0.2)  # let the checkpoint's write finish
            break
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be interrupted"
    assert run_id is not None
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), run_id


def test_ctrl_c_then_resume(home: Path) -> None:
    interrupted, run_id = _interrupt_after_first_epoch(home)
    assert interrupted.returncode == 130, interrupted.stderr[-3000:]
    lines = interrupted.stderr.strip().splitlines()
    assert len(lines) == 1, interrupted.stderr[-3000:]
    assert lines[0].endswith("resume it with: modelyard train task=digits --resume"), lines
    assert run_id in lines[0]
    tracking.configure()
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["modelyard.status"] == "interrupted"

    # (tests/train/test_resume_config.py covers choosing the run without training.)
    # An override that would change the run is refused by name, not ignored.
    conflict = run_cli("train", "task=digits", "train.max_epochs=9", "--resume")
    assert conflict.returncode == 2
    assert f"train.max_epochs={EPOCHS} (override: 9)" in conflict.stderr
    assert len(conflict.stderr.strip().splitlines()) == 1

    # No task= given (the default task is mnist5k): the newest interrupted run of any task.
    resumed = run_cli("train", "--resume", "train.progress_bar=false", "--json")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads(resumed.stdout)
    assert result["run_id"] == run_id and result["resumed"]
    assert result["model_version"] == "1"
    assert client.get_run(run_id).info.status == "FINISHED"
    steps = sorted(m.step for m in client.get_metric_history(run_id, "val_loss"))
    assert steps == list(range(EPOCHS)), steps


def test_a_locked_tracking_store_at_ctrl_c_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI saw SQLite's "database is locked" once as the interrupted run ended: the run
    stayed RUNNING and the command exited 1, not 130. The write is tried again."""
    from mlflow.exceptions import MlflowException

    from modelyard.train import run as train_run

    monkeypatch.setattr(train_run, "LOCKED_RETRY_PAUSES_S", (0.0, 0.0))
    calls: list[int] = []

    def locked_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise MlflowException("(sqlite3.OperationalError) database is locked")

    train_run._while_locked(locked_once)
    assert len(calls) == 2

    def down() -> None:
        raise MlflowException("connection refused")

    with pytest.raises(MlflowException, match="refused"):
        train_run._while_locked(down)  # not a lock: raised at once
