"""``modelyard tune``: trials as nested MLflow runs, pruning, the best registered,
and two worker processes sharing one study on PostgreSQL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from mlflow.tracking import MlflowClient
from tests.helpers import CtrlCInWrite, ctrl_c_inside, finished_study, run_cli
from tests.postgres import temporary_database

import modelyard.tune.study as study_module
from modelyard import bundle, registry, tracking
from modelyard.config import compose_config
from modelyard.errors import ConfigError, ModelyardError
from modelyard.paths import checkpoint_dir
from modelyard.train import run as train_run
from modelyard.train.run import train
from modelyard.tune import tune
from modelyard.tune.registration import register_best
from modelyard.tune.storage import PARENT_ATTR, default_storage
from modelyard.tune.study import MODEL_URI_ATTR, RUN_ID_ATTR, TuneInterrupted

pytestmark = pytest.mark.slow

TINY = ["task=digits", "train=fast", "train.max_epochs=2"]


def test_study_nests_trials_and_registers_the_best(home: Path) -> None:
    result = tune(TINY, trials=3, study_name="unit")
    assert result.storage == f"sqlite:///{home / 'optuna.db'}"
    assert [t.number for t in result.trials] == [0, 1, 2] and result.ran_here == [0, 1, 2]
    client = MlflowClient()
    children = client.search_runs(
        [client.get_run(result.parent_run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
    )
    assert sorted(r.data.tags["modelyard.tune.trial"] for r in children) == ["0", "1", "2"]
    assert {t.run_id for t in result.trials} == {r.info.run_id for r in children}
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["modelyard.tune.study"] == "unit"

    completed = [t for t in result.trials if t.state == "complete"]
    best = min(completed, key=lambda t: t.value)  # val_loss is minimised
    assert result.best is not None and result.best.number == best.number
    assert set(best.params) == {
        "train.lr",
        "train.batch_size",
        "train.weight_decay",
        "model.hidden",
        "model.dropout",
    }
    # The trial's sampled values are what it trained with, and only the best is registered.
    params = client.get_run(best.run_id).data.params
    assert float(params["train.lr"]) == pytest.approx(best.params["train.lr"])
    assert params["model.hidden"] == str(best.params["model.hidden"])
    assert result.model_version == "1"
    candidate = bundle.load("digits-cnn@candidate")
    assert candidate.manifest["run_id"] == best.run_id
    assert candidate.metrics["best_val_loss"] == pytest.approx(best.value)
    tags = client.get_model_version("digits-cnn", "1").tags
    assert tags["modelyard.tune.trial"] == str(best.number)

    # Joining a study whose budget is spent runs nothing and keeps the same best.
    again = tune(TINY, trials=3, study_name="unit")
    assert again.ran_here == [] and again.best == result.best
    assert again.parent_run_id == result.parent_run_id and again.model_version == "1"
    # A worker with another search space may not join it.
    other = {"train.lr": {"type": "float", "low": 0.001, "high": 0.01}}
    with pytest.raises(ConfigError, match="study 'unit' was started with a different space"):
        tune(TINY, trials=4, study_name="unit", space=other)


def test_pruned_trials_stop_early_and_register_nothing(home: Path) -> None:
    # A pruner that prunes at the first report: every trial stops after epoch 0.
    result = tune(
        [*TINY, "train.max_epochs=3"],
        trials=2,
        study_name="prune",
        pruner=optuna.pruners.ThresholdPruner(upper=0.0),
    )
    assert [t.state for t in result.trials] == ["pruned", "pruned"]
    assert result.best is None and result.model_version is None
    client = MlflowClient()
    for trial in result.trials:
        run = client.get_run(trial.run_id)
        assert run.info.status == "KILLED" and run.data.tags["modelyard.status"] == "pruned"
        assert [m.step for m in client.get_metric_history(trial.run_id, "pruner_val_loss")] == [0]
    assert client.search_registered_models() == []


def test_rerun_that_runs_no_trial_moves_nothing(home: Path) -> None:
    tiny = [*TINY, "train.max_epochs=1", "data.limit=200"]
    first = tune(tiny, trials=1, study_name="done")
    assert first.model_version == "1"
    # After the study a newer version, of another run, becomes candidate (as a later
    # `modelyard train` would make it; here the same files, registered from a new run).
    client = MlflowClient()
    other_run = client.create_run(client.get_run(first.parent_run_id).info.experiment_id)
    source = client.get_model_version("digits-cnn", "1").source
    newer = client.create_model_version("digits-cnn", source, run_id=other_run.info.run_id)
    client.set_registered_model_alias("digits-cnn", registry.CANDIDATE, newer.version)
    assert str(newer.version) == "2"
    again = tune(tiny, trials=1, study_name="done")
    assert again.ran_here == [] and again.model_version == "1"  # reported, not re-pointed
    assert str(client.get_model_version_by_alias("digits-cnn", "candidate").version) == "2"


def test_a_worker_leaves_another_machines_best_trial_to_that_machine(home: Path) -> None:
    # Two workers finishing at once both registered the best trial (two versions, and
    # the second alias write failed on PostgreSQL): only the one holding its bundle does.
    tracking.configure()
    client = MlflowClient()
    experiment = client.create_experiment("elsewhere")
    run = client.create_run(experiment)  # ran on another machine: no bundle here
    study = optuna.create_study(direction="maximize")
    for number, value in enumerate((0.5, 0.9)):
        trial = study.ask()
        trial.set_user_attr(RUN_ID_ATTR, run.info.run_id)
        trial.set_user_attr(MODEL_URI_ATTR, f"runs:/{run.info.run_id}/model")
        study.tell(trial, value)
        assert trial.number == number
    cfg = compose_config(TINY)
    assert register_best(study, cfg, ran=[0]) is None  # trial 1, the best, ran elsewhere
    assert register_best(study, cfg, ran=[]) is None
    assert client.search_model_versions(f"name='{cfg.task.model_name}'") == []


class _CtrlCAtEpoch(optuna.pruners.BasePruner):
    """Ctrl-C in the middle of a trial's fit: raised where Lightning's loop runs the
    pruning callback, after epoch ``epoch``'s validation (its last.ckpt is written)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.last_step is not None and trial.last_step >= self.epoch:
            raise KeyboardInterrupt
        return False


def test_interrupted_trial_is_failed_and_not_resumable(home: Path) -> None:
    tiny = [*TINY, "train.max_epochs=3", "data.limit=300"]
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TuneInterrupted) as interrupted:
        tune(tiny, trials=2, study_name="ctrl-c", pruner=_CtrlCAtEpoch(1))
    assert interrupted.value.failed == [0] and "study ctrl-c" in str(interrupted.value)
    assert signal.getsignal(signal.SIGINT) is handler  # Lightning's SIG_IGN undone
    study = optuna.load_study(study_name="ctrl-c", storage=f"sqlite:///{home / 'optuna.db'}")
    [trial] = study.trials
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs["interrupted"]
    client = MlflowClient()
    run_id = trial.user_attrs["mlflow_run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["modelyard.status"] == "interrupted"
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.info.status == "KILLED"
    # The trial left a checkpoint, but it belongs to the study: train --resume skips it.
    assert (checkpoint_dir(run_id) / "last.ckpt").exists()
    with pytest.raises(ModelyardError, match="no interrupted 'digits' run"):
        train(compose_config(["task=digits"]), resume=True)

    # The interrupted trial did not use up the budget: the study continues with 2 trials.
    again = tune(tiny, trials=2, study_name="ctrl-c")
    assert again.ran_here == [1, 2]
    assert [t.state for t in again.trials] == ["fail", "complete", "complete"]
    assert client.get_run(again.parent_run_id).info.status == "FINISHED"


def test_cli_errors_are_one_line(home: Path) -> None:
    bad = run_cli("tune", "task=digits", "train.nope=1", "--trials", "2")
    assert bad.returncode == 2 and "unknown config key 'train.nope'" in bad.stderr
    zero = run_cli("tune", "task=digits", "--trials", "0")
    assert zero.returncode == 2 and "--trials must be at least 1" in zero.stderr
    ddp = run_cli("tune", "task=digits", "train.strategy=ddp", "--trials", "2")
    assert ddp.returncode == 2 and "several 'modelyard tune' workers" in ddp.stderr
    assert len(ddp.stderr.strip().splitlines()) == 1


def _worker(home: Path, storage: str, tracking_uri: str) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("modelyard")
    # Smaller still than TINY: this test is about sharing, not about search quality.
    tiny = [*TINY, "train.max_epochs=1", "data.limit=200"]
    args = [str(exe), "tune", *tiny, "--trials", "4", "--storage", storage, "--study", "shared"]
    env = {
        # Each worker is its own "machine": its own home; tracking and study are shared.
        "MODELYARD_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": str(exe.parent),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    return subprocess.Popen(
        [*args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_two_workers_split_one_postgres_study(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with (
        temporary_database("modelyard_optuna") as storage,
        temporary_database("modelyard_mlflow") as tracking_uri,
    ):
        # Create the tracking schema and the experiment (with a shared artifact
        # folder, the S3 of this test) once, before the workers race for them.
        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        tracking.configure()
        artifacts = (tmp_path / "artifacts").as_uri()
        MlflowClient().create_experiment("digits", artifact_location=artifacts)

        workers = [_worker(tmp_path / f"machine{i}", storage, tracking_uri) for i in (1, 2)]
        outputs = []
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=240)
            assert worker.returncode == 0, stderr[-3000:]
            outputs.append(json.loads(stdout))

        first, second = (set(o["ran_here"]) for o in outputs)
        assert first and second, "both workers ran trials"
        assert not first & second, "no trial ran twice"
        study = optuna.load_study(study_name="shared", storage=storage)
        numbers = [t.number for t in study.trials]
        assert len(numbers) == len(set(numbers)) >= 4
        assert first | second == set(numbers)
        assert outputs[0]["parent_run_id"] == outputs[1]["parent_run_id"]

        client = MlflowClient()
        experiment = client.get_experiment_by_name("digits")
        children = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{outputs[0]['parent_run_id']}'",
        )
        trial_tags = sorted(int(r.data.tags["modelyard.tune.trial"]) for r in children)
        assert trial_tags == sorted(numbers)

        # The registry's candidate is the study's best, whichever worker registered it.
        best = study.best_trial
        version = client.get_model_version_by_alias("digits-cnn", "candidate")
        assert version.run_id == best.user_attrs["mlflow_run_id"]
        assert version.tags["modelyard.tune.trial"] == str(best.number)
        # A worker that finished last saw every trial finished; it reports that best.
        final = [o for o in outputs if all(t["state"] != "running" for t in o["trials"])]
        assert final and all(o["best"]["number"] == best.number for o in final)


# A Ctrl-C that lands inside an SQLite tracking write leaves the store locked, and the
# parent run's close after it waits 20 s and fails (tracking.ctrl_c_after_write): the
# study's own writes hold it until they end, and each test fails without that hold.


@pytest.mark.parametrize(
    ("outcome", "at", "written"),
    [
        ("completes", "log_metric", ["set_tag", "set_tag", "log_metric"]),
        ("is pruned", None, ["set_tag", "set_tag", "set_tag", "set_terminated"]),
        ("is interrupted", None, ["set_tag", "set_tag"]),
    ],
)
def test_a_ctrl_c_inside_a_trials_writes_comes_after_them(
    outcome: str, at: str | None, written: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held until the trial's writes end, then the trial is failed as interrupted (out
    of the budget: the study's rerun trains it again), whatever its outcome was."""
    cfg = compose_config(TINY)
    study = optuna.create_study()
    running: list[optuna.Trial] = []

    def train(*args: object, **kwargs: object) -> SimpleNamespace:
        running[-1].set_user_attr(RUN_ID_ATTR, "child")  # as OptunaPruning does at fit start
        if outcome == "is pruned":
            raise optuna.TrialPruned
        if outcome == "is interrupted":
            raise KeyboardInterrupt
        return SimpleNamespace(run_id="child", model_uri="runs:/child/model", bundle_path="b")

    monkeypatch.setattr(train_run, "train", train)
    metrics = {f"best_{cfg.tune.metric}": 0.9}
    monkeypatch.setattr(study_module, "read_bundle", lambda path: SimpleNamespace(metrics=metrics))
    ctrl_c = CtrlCInWrite(at)
    client = ctrl_c.client("set_tag", "set_terminated", "log_metric")
    monkeypatch.setattr("mlflow.tracking.MlflowClient", lambda: client)
    objective = study_module._objective(TINY, cfg, [], "parent", [])

    def run(trial: optuna.Trial) -> float:
        running.append(trial)
        return float(objective(trial))

    with pytest.raises(KeyboardInterrupt):
        study.optimize(run, n_trials=3)
    assert ctrl_c.names() == written
    [trial] = study.trials
    assert trial.state.name == "FAIL" and trial.user_attrs[study_module.INTERRUPTED_ATTR]


def test_a_ctrl_c_inside_the_parent_runs_close_comes_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctrl_c = CtrlCInWrite()
    client = ctrl_c.client("log_metric", "set_tag", "set_terminated")
    monkeypatch.setattr("mlflow.tracking.MlflowClient", lambda: client)
    with pytest.raises(KeyboardInterrupt):
        study_module._close_parent(finished_study(), "parent", compose_config(TINY), "3")
    # trials_complete/pruned/fail and the best value; the best trial, its lr, the
    # candidate version; then the run closed.
    assert ctrl_c.names() == ["log_metric"] * 4 + ["set_tag"] * 3 + ["set_terminated"]


def _completing_objective(*args: object) -> object:
    """In place of ``_objective``: each trial completes at once."""
    ran = args[-1]

    def run(trial: optuna.Trial) -> float:
        ran.append(trial.number)  # type: ignore[attr-defined]
        return 0.5

    return run


def _parent_status(name: str) -> str:
    study = optuna.load_study(study_name=name, storage=default_storage())
    parent = study.user_attrs[PARENT_ATTR]
    return str(MlflowClient().get_run(parent).info.status)


def test_a_ctrl_c_during_registration_closes_the_parent_killed(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def register(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # registration uploads the bundle: seconds open to Ctrl-C

    monkeypatch.setattr(study_module, "_objective", _completing_objective)
    monkeypatch.setattr(study_module, "register_best", register)
    with pytest.raises(TuneInterrupted):
        tune(TINY, trials=2, study_name="registering")
    assert _parent_status("registering") == "KILLED"


def test_the_rerun_after_a_ctrl_c_during_registration_registers_the_best(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interrupt tells the user to rerun; the rerun found the budget used, ran no
    # trial and registered nothing, so the study's best was never a candidate.
    tiny = [*TINY, "train.max_epochs=1", "data.limit=200"]

    def upload_cut_short(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(registry, "create_version", upload_cut_short)
        with pytest.raises(TuneInterrupted, match="--study cut"):
            tune(tiny, trials=1, study_name="cut")
    client = MlflowClient()
    assert client.search_model_versions("name='digits-cnn'") == []
    again = tune(tiny, trials=1, study_name="cut")
    assert again.ran_here == [] and again.model_version == "1"
    assert again.best is not None
    candidate = client.get_model_version_by_alias("digits-cnn", registry.CANDIDATE)
    assert candidate.run_id == again.best.run_id
    assert candidate.tags["modelyard.tune.study"] == "cut"
    assert _parent_status("cut") == "FINISHED"
    # Once registered, a further rerun reports that version and registers no other.
    assert tune(tiny, trials=1, study_name="cut").model_version == "1"
    assert len(client.search_model_versions("name='digits-cnn'")) == 1


def test_the_rerun_after_a_ctrl_c_between_version_and_alias_points_the_alias(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The version was made, its alias and tags were not: the rerun used to find the
    # version, report it, and leave it no candidate.
    tiny = [*TINY, "train.max_epochs=1", "data.limit=200"]

    def alias_cut_short(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "set_registered_model_alias", alias_cut_short)
        with pytest.raises(TuneInterrupted):
            tune(tiny, trials=1, study_name="halfway")
    client = MlflowClient()
    assert [str(v.version) for v in client.search_model_versions("name='digits-cnn'")] == ["1"]
    assert client.get_registered_model("digits-cnn").aliases == {}
    again = tune(tiny, trials=1, study_name="halfway")
    assert again.ran_here == [] and again.model_version == "1"
    candidate = client.get_model_version_by_alias("digits-cnn", registry.CANDIDATE)
    assert str(candidate.version) == "1" and candidate.tags["modelyard.tune.study"] == "halfway"


def test_a_ctrl_c_while_the_study_opens_leaves_it_whole_to_join(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pressed inside the parent run's creation: unheld, the study was left with no
    # parent, a rerun waited a minute for one, then opened another.
    monkeypatch.setattr(study_module, "_objective", _completing_objective)
    unregistered = [*TINY, "tracking.register=false"]
    with monkeypatch.context() as patch:
        ctrl_c_inside(patch, MlflowClient, "create_run", every_call=True)
        with pytest.raises(TuneInterrupted, match="--study opening to continue"):
            tune(unregistered, trials=1, study_name="opening")
    study = optuna.load_study(study_name="opening", storage=default_storage())
    parent = study.user_attrs[PARENT_ATTR]
    opened = MlflowClient().get_run(parent)
    assert "tune.metric" in opened.data.params  # written whole
    assert opened.info.status == "KILLED"  # not left RUNNING: no trial ran in it yet
    again = tune(unregistered, trials=1, study_name="opening")
    assert again.parent_run_id == parent and again.ran_here == [0]
    assert _parent_status("opening") == "FINISHED"
