"""End to end: training logs everything to MLflow and leaves a registered bundle."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import lightning as L
import mlflow
import mlflow.tracking.fluent as mlflow_fluent
import pytest
from mlflow.tracking import MlflowClient
from tests.conftest import FAST
from tests.helpers import CtrlCInWrite, press_ctrl_c
from torch import nn

from modelyard import bundle
from modelyard.config import compose_config
from modelyard.train import run as train_run
from modelyard.train.refit import Refit
from modelyard.train.run import train

pytestmark = pytest.mark.slow


def test_run_tracks_config_git_dataset_curves_and_reports(trained, use_session_home) -> None:  # type: ignore[no-untyped-def]
    client = MlflowClient()
    run = client.get_run(trained.run_id)
    params = run.data.params
    assert params["task.name"] == "digits" and params["train.max_epochs"] == "3"
    assert params["model.channels"] == "[16, 32]"
    tags = run.data.tags
    assert tags["modelyard.git_commit"]  # a commit hash, or "no git"
    assert tags["modelyard.git_dirty"] in ("true", "false", "no git")
    fingerprint = tags["modelyard.dataset_fingerprint"]
    inputs = run.inputs.dataset_inputs
    assert {i.tags[0].value for i in inputs} == {"training", "validation", "testing"}
    assert all(fingerprint.startswith(i.dataset.digest) for i in inputs)
    for name in ("train_loss", "train_acc", "val_loss", "val_acc"):
        steps = [m.step for m in client.get_metric_history(trained.run_id, name)]
        assert steps == [0, 1, 2], name
    assert run.data.metrics["test_accuracy"] > 0.6
    artifacts = {a.path for a in client.list_artifacts(trained.run_id, "evaluation")}
    assert artifacts == {
        "evaluation/test_report.json",
        "evaluation/test_report.txt",
        "evaluation/test_confusion_matrix.png",
        "evaluation/training_curves.png",
    }
    report = json.loads(
        Path(client.download_artifacts(trained.run_id, "evaluation/test_report.json")).read_text()
    )
    assert report["split"] == "test" and len(report["per_class"]) == 10


def test_bundle_is_registered_as_candidate(trained, use_session_home) -> None:  # type: ignore[no-untyped-def]
    loaded = bundle.load("models:/digits-cnn@candidate")
    assert loaded.version == trained.model_version
    assert loaded.labels == tuple("0123456789")
    assert loaded.manifest["run_id"] == trained.run_id
    assert loaded.manifest["onnx"]["parity"]["max_abs_diff_probabilities"] <= 1e-4
    assert loaded.metrics["test_accuracy"] == pytest.approx(trained.metrics["test_accuracy"])
    profile = loaded.reference_profile
    assert set(profile["features"]) == {"mean_intensity", "std_intensity", "ink_fraction"}
    assert len(profile["embedding"]["projected_sample"][0]) == 4


def test_mlflow_pyfunc_loads_the_same_model(trained, use_session_home) -> None:  # type: ignore[no-untyped-def]
    from modelyard.data import load_dataset
    from modelyard.predictor import Predictor

    images = load_dataset(compose_config(FAST).data).test.images[:5]
    pyfunc = mlflow.pyfunc.load_model("models:/digits-cnn@candidate")
    ours = Predictor(bundle.load("digits-cnn@candidate")).predict_images(images)
    assert pyfunc.predict(images) == pytest.approx(ours.probabilities, abs=1e-6)


def test_same_seed_same_metrics(home: Path) -> None:
    # Pinned threads: a deterministic run otherwise takes the cores free when it
    # starts, and a test in another process (make test runs two) can change that
    # between the runs; a different thread count sums in a different order.
    pinned = compose_config([*FAST, "train.threads=1"])
    first = train(pinned)
    second = train(pinned)
    assert first.run_id != second.run_id
    assert first.metrics == second.metrics
    assert second.model_version == "2"


class _InterruptAtEpoch2(train_run.MlflowEpochMetrics):
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        if trainer.current_epoch == 2:
            raise KeyboardInterrupt


def test_resume_continues_the_same_run(home: Path) -> None:
    overrides = [*FAST, "train.max_epochs=4", "train.early_stopping_patience=10"]
    reference = train(compose_config(overrides))
    handler = signal.getsignal(signal.SIGINT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_run, "MlflowEpochMetrics", _InterruptAtEpoch2)
        # Lightning answers Ctrl-C with sys.exit(1); train() turns that back into one.
        with pytest.raises(train_run.TrainingInterrupted, match="task=digits --resume"):
            train(compose_config(overrides))
    # Lightning ignores further Ctrl-C after one; train() gives the handler back.
    assert signal.getsignal(signal.SIGINT) is handler
    client = MlflowClient()
    interrupted = client.search_runs(
        [reference.experiment_id], order_by=["attributes.start_time DESC"]
    )[0]
    assert interrupted.info.status == "KILLED"
    assert interrupted.data.tags["modelyard.status"] == "interrupted"
    resumed = train(compose_config(["task=digits"]), resume=True)
    assert resumed.resumed and resumed.run_id == interrupted.info.run_id
    steps = [m.step for m in client.get_metric_history(resumed.run_id, "val_loss")]
    assert steps == [0, 1, 2, 3]
    assert client.get_run(resumed.run_id).info.status == "FINISHED"
    assert resumed.metrics["test_accuracy"] == pytest.approx(
        reference.metrics["test_accuracy"], abs=0.03
    )
    with pytest.raises(Exception, match="no interrupted 'digits' run"):
        train(compose_config(["task=digits"]), resume=True)


@pytest.mark.parametrize(
    "knobs",
    [
        ["train.precision=bf16-mixed"],
        ["train.scheduler=cosine", "train.optimizer=adam"],
        ["train.scheduler=step", "train.augment=true"],
        ["train.scheduler=none", "train.num_workers=1"],
        ["train.scheduler=plateau", "train.label_smoothing=0.1"],
    ],
)
def test_training_knobs_train_and_export(home: Path, knobs: list[str]) -> None:
    overrides = [*FAST, "train.max_epochs=2", "data.limit=60", "tracking.register=false", *knobs]
    result = train(compose_config(overrides))
    assert result.model_version is None and result.epochs == 2
    loaded = bundle.load(result.bundle_path)
    assert loaded.manifest["onnx"]["parity"]["max_abs_diff_probabilities"] <= 1e-4
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0


def test_a_ctrl_c_inside_the_refits_writes_comes_after_them(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refit's figures are logged between two fits and the bundle: a Ctrl-C cut
    short there would lock the store for the write that ends the run KILLED."""
    record = {"final_fit_data": "all labelled data", "final_fit_fingerprint": "abc"}
    refit = Refit(nn.Linear(1, 1), record)
    monkeypatch.setattr(train_run, "refit_on_all", lambda cfg, dataset, epochs, fit: refit)
    ctrl_c = CtrlCInWrite()
    for name in ("log_metric", "log_params", "set_tag"):
        monkeypatch.setattr(mlflow, name, ctrl_c.write(name))
    with pytest.raises(KeyboardInterrupt):
        train_run._refit(compose_config(FAST), cast(Any, None), "run", 2)
    assert ctrl_c.names() == ["log_metric", "log_params", "set_tag"]
    assert ctrl_c.writes[1:] == [
        ("log_params", {"final_fit_data": "all labelled data"}),
        ("set_tag", "modelyard.final_fit", "all labelled data"),
    ]


def test_a_ctrl_c_inside_the_last_writes_leaves_the_run_finished(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status write and the run's end come after the bundle: a Ctrl-C then is held
    until both are written (one cut short would lock the store), and it reaches a
    finished run, which stays FINISHED and complete, with nothing to resume."""
    module = SimpleNamespace(model=nn.Linear(1, 1))
    monkeypatch.setattr(train_run, "_fit", lambda *args, **kwargs: (module, 1, 1))
    finished = SimpleNamespace(bundle=SimpleNamespace(path=home / "bundle"))
    monkeypatch.setattr(train_run, "finish", lambda *args, **kwargs: finished)
    ctrl_c = CtrlCInWrite(at="modelyard.status=complete")
    set_tag = mlflow.set_tag

    def tag_then_write(key: str, value: str) -> None:
        ctrl_c.write(f"{key}={value}")()
        set_tag(key, value)

    monkeypatch.setattr(mlflow, "set_tag", tag_then_write)
    with pytest.raises(train_run.TrainingInterrupted) as interrupted:
        train(compose_config(FAST))
    statuses = [name for name in ctrl_c.names() if name.startswith("modelyard.status=")]
    assert statuses == ["modelyard.status=complete"]
    assert interrupted.value.command is None and "nothing to resume" in str(interrupted.value)
    run = MlflowClient().get_run(interrupted.value.run_id or "")
    assert run.info.status == "FINISHED" and run.data.tags["modelyard.status"] == "complete"
    assert mlflow.active_run() is None


@pytest.mark.parametrize("cut", ["modelyard.status=complete", "end_run"])
def test_a_second_ctrl_c_in_the_last_writes_ends_the_run_killed(
    cut: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pressed twice, the last writes are cut short at once (the store may be hung):
    the run is ended KILLED by its id, even when end_run had already taken it off the
    active stack, and no new run is started for that."""
    module = SimpleNamespace(model=nn.Linear(1, 1))
    monkeypatch.setattr(train_run, "_fit", lambda *args, **kwargs: (module, 1, 1))
    finished = SimpleNamespace(bundle=SimpleNamespace(path=home / "bundle"))
    monkeypatch.setattr(train_run, "finish", lambda *args, **kwargs: finished)
    set_tag, end_run = mlflow.set_tag, mlflow.end_run

    def press_twice() -> None:
        press_ctrl_c()
        press_ctrl_c()

    def tag(key: str, value: str) -> None:
        if f"{key}={value}" == cut:
            press_twice()
        set_tag(key, value)

    def end(status: str = "FINISHED") -> None:
        if cut == "end_run" and status == "FINISHED":
            mlflow_fluent._active_run_stack.get().pop()  # as end_run does before writing
            press_twice()
        end_run(status)

    monkeypatch.setattr(mlflow, "set_tag", tag)
    monkeypatch.setattr(mlflow, "end_run", end)
    with pytest.raises(train_run.TrainingInterrupted) as interrupted:
        train(compose_config(FAST))
    run = MlflowClient().get_run(interrupted.value.run_id or "")
    assert run.info.status == "KILLED" and run.data.tags["modelyard.status"] == "interrupted"
    assert len(MlflowClient().search_runs([run.info.experiment_id])) == 1
    assert mlflow.active_run() is None
