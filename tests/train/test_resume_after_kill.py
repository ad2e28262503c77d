"""`modelyard train` killed with SIGKILL mid-epoch, then `--resume`: same MLflow run,
every epoch logged once, and the metrics of an uninterrupted run."""

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
EPOCHS = 3  # train=fast; the session's `trained` model is the uninterrupted reference
OVERRIDES = [*FAST, f"train.max_epochs={EPOCHS}"]


def _train_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = run_cli("train", *args, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_sigkill_mid_epoch_then_resume(trained, home: Path) -> None:  # type: ignore[no-untyped-def]
    assert trained.epochs == EPOCHS
    exe = Path(sys.executable).with_name("modelyard")
    process = subprocess.Popen(
        [str(exe), "train", *OVERRIDES], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # Wait for the first epoch's checkpoint, then kill during the second.
    deadline = time.monotonic() + 120
    run_folder = None
    while time.monotonic() < deadline and process.poll() is None:
        runs = list((home / "runs").iterdir()) if (home / "runs").exists() else []
        if runs:  # a fresh home: the only run is this one
            run_folder = runs[0]
            history = run_folder / "checkpoints"
            if len(list(history.glob("*.ckpt"))) and _epochs_done(run_folder) >= 1:
                break
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be killed"
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert run_folder is not None
    run_id = run_folder.name

    resumed = _train_json("task=digits", "--resume")
    assert resumed["run_id"] == run_id and resumed["resumed"]
    tracking.configure()
    client = MlflowClient()
    steps = sorted(m.step for m in client.get_metric_history(run_id, "val_loss"))
    assert steps == list(range(EPOCHS)), steps  # each epoch once, the killed one redone
    assert client.get_run(run_id).info.status == "FINISHED"
    for metric in ("test_accuracy", "test_macro_f1"):
        assert resumed["metrics"][metric] == pytest.approx(trained.metrics[metric], abs=0.03), (
            metric
        )


def _epochs_done(run_folder: Path) -> int:
    """Epochs whose validation was logged to MLflow so far (read from the run's store)."""
    tracking.configure()
    history = MlflowClient().get_metric_history(run_folder.name, "val_loss")
    return len(history)
