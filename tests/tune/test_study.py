"""``modelyard tune``: trials as nested MLflow runs, pruning, the best registered,
and two worker processes sharing one study on PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from mlflow.tracking import MlflowClient
from tests.helpers import CtrlCInWrite, ctrl_c_inside, run_cli
from tests.postgres import temporary_database

import modelyard.tune.study as study_module
from modelyard import bundle, registry, tracking
from modelyard.config import compose_config
from modelyard.errors import ConfigError, ModelyardError
from modelyard.paths import bundle_dir, checkpoint_dir
from modelyard.train import run as train_run
from modelyard.train.run import train
from modelyard.tune import tune
from modelyard.tune.storage import PARENT_ATTR, default_storage
from modelyard.tune.study import (
    MODEL_URI_ATTR,
    REGISTERING_ATTR,
    RUN_ID_ATTR,
    STALE_REGISTRATION_S,
    TuneInterrupted,
    _register_best,
)

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
    assert _register_best(study, cfg, ran=[0]) is None  # trial 1, the best, ran elsewhere
    assert _register_best(study, cfg, ran=[]) is None
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


def _finished_study() -> optuna.Study:
    study = optuna.create_study()
    lr = optuna.distributions.FloatDistribution(0.001, 0.1)
    attrs = {RUN_ID_ATTR: "best", MODEL_URI_ATTR: "runs:/best/model"}
    trial = optuna.trial.create_trial(
        value=0.9, params={"train.lr": 0.01}, distributions={"train.lr": lr}, user_attrs=attrs
    )
    study.add_trial(trial)
    return study


def test_a_ctrl_c_inside_the_candidates_tags_comes_after_them(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "create_version", lambda uri, name, bundle=None: "3")
    monkeypatch.setattr(registry, "point_alias", lambda *args: None)
    ctrl_c = CtrlCInWrite()
    client = ctrl_c.client("set_model_version_tag", search_model_versions=lambda *a, **k: [])
    monkeypatch.setattr("mlflow.tracking.MlflowClient", lambda: client)
    study = _finished_study()
    with pytest.raises(KeyboardInterrupt):
        _register_best(study, compose_config(TINY), ran=[0])
    assert ctrl_c.names() == ["set_model_version_tag"] * 4
    # Done, not cut: a rerun that took it for cut pointed candidate back at it.
    assert study.user_attrs[REGISTERING_ATTR.format(run_id="best")]["done"] is True


def test_a_ctrl_c_held_through_the_registrations_first_record_marks_it_cut(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unmarked, the rerun the interrupt asks for took it for another worker's and
    # registered nothing for an hour.
    client, study, run_id = _registered_study()
    ctrl_c_inside(monkeypatch, study, "set_user_attr")
    with pytest.raises(KeyboardInterrupt):
        _register_best(study, compose_config(TINY), ran=[0])
    assert study.user_attrs[REGISTERING_ATTR.format(run_id=run_id)]["cut"] is True
    assert client.search_model_versions("name='digits-cnn'") == []


def test_a_rerun_without_the_bundle_does_not_report_a_cut_registrations_version(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The cut registration made version 1 and moved no alias; a worker elsewhere can
    # not finish it, and used to report version 1 as registered (candidate).
    client, study, run_id = _registered_study()
    client.create_model_version("digits-cnn", f"runs:/{run_id}/model", run_id=run_id)
    key = REGISTERING_ATTR.format(run_id=run_id)
    study.set_user_attr(key, {"began": time.time() - 1, "done": False, "cut": True})
    bundle_dir(run_id).rmdir()  # the bundle is on the machine that was cut
    assert _register_best(study, compose_config(TINY), ran=[]) is None
    assert client.get_registered_model("digits-cnn").aliases == {}
    assert "on the machine that holds its bundle to finish it" in caplog.text


def test_a_ctrl_c_inside_the_parent_runs_close_comes_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctrl_c = CtrlCInWrite()
    client = ctrl_c.client("log_metric", "set_tag", "set_terminated")
    monkeypatch.setattr("mlflow.tracking.MlflowClient", lambda: client)
    with pytest.raises(KeyboardInterrupt):
        study_module._close_parent(_finished_study(), "parent", compose_config(TINY), "3")
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
    monkeypatch.setattr(study_module, "_register_best", register)
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


def _registered_study(storage: str | None = None) -> tuple[MlflowClient, optuna.Study, str]:
    """The tracking client, and a study (in memory, or ``race`` in ``storage``) whose
    best trial's run (its id returned) has a bundle folder on this machine."""
    tracking.configure()
    client = MlflowClient()
    run = client.create_run(client.create_experiment("here"))
    bundle_dir(run.info.run_id).mkdir(parents=True)
    study = optuna.create_study(
        direction="maximize", storage=storage, study_name="race" if storage else None
    )
    trial = study.ask()
    trial.set_user_attr(RUN_ID_ATTR, run.info.run_id)
    trial.set_user_attr(MODEL_URI_ATTR, f"runs:/{run.info.run_id}/model")
    study.tell(trial, 0.9)
    client.create_registered_model("digits-cnn")
    return client, study, run.info.run_id


def test_a_registration_begun_elsewhere_is_left_to_it_until_cut_or_stale(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another worker, on any host, is uploading: a rerun leaves it (it used to register
    # the same run again). Cut by Ctrl-C, or begun over an hour ago, a rerun finishes it.
    client, study, run_id = _registered_study()
    asked: list[str] = []

    def create_version(model_uri: str, name: str, bundle: object = None) -> str:
        asked.append(model_uri)
        return str(client.create_model_version(name, model_uri, run_id=run_id).version)

    monkeypatch.setattr(registry, "create_version", create_version)
    cfg = compose_config(TINY)
    key = REGISTERING_ATTR.format(run_id=run_id)
    study.set_user_attr(key, {"began": time.time(), "done": False, "cut": False})
    assert _register_best(study, cfg, ran=[]) is None
    assert _register_best(study, cfg, ran=[0]) is None and asked == []
    study.set_user_attr(key, {"began": time.time() - 2 * STALE_REGISTRATION_S, "done": False})
    assert _register_best(study, cfg, ran=[]) == "1" and len(asked) == 1
    assert study.user_attrs[key]["done"] is True
    assert str(client.get_model_version_by_alias("digits-cnn", "candidate").version) == "1"
    assert _register_best(study, cfg, ran=[0]) == "1" and len(asked) == 1  # done is done


def test_a_cut_registration_does_not_move_candidate_back_to_an_older_version(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A version of the run made before the cut registration began was registered (and
    # made candidate) then; since, another model became candidate. Finishing the cut
    # registration reports that version and leaves candidate where it is.
    client, study, run_id = _registered_study()
    monkeypatch.setattr(study_module, "CLOCK_SKEW_S", 0.0)
    older = client.create_model_version("digits-cnn", f"runs:/{run_id}/model", run_id=run_id)
    other = client.create_run(client.create_experiment("later"))
    newer = client.create_model_version("digits-cnn", "elsewhere", run_id=other.info.run_id)
    client.set_registered_model_alias("digits-cnn", registry.CANDIDATE, newer.version)
    time.sleep(0.01)
    key = REGISTERING_ATTR.format(run_id=run_id)
    study.set_user_attr(key, {"began": time.time(), "done": False, "cut": True})
    assert _register_best(study, compose_config(TINY), ran=[]) == str(older.version)
    candidate = client.get_model_version_by_alias("digits-cnn", registry.CANDIDATE)
    assert str(candidate.version) == str(newer.version)


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


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_finishing_at_once_register_the_best_once(
    backend: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers of one study on one machine (both hold the bundle) find its
    # registration unbegun at the same moment: both used to register it, two versions.
    with contextlib.ExitStack() as stack:
        storage = (
            f"sqlite:///{tmp_path / 'optuna.db'}"
            if backend == "sqlite"
            else stack.enter_context(temporary_database("modelyard_claim"))
        )
        client, _, run_id = _registered_study(storage)
        made: list[str] = []

        def create_version(model_uri: str, name: str, bundle: object = None) -> str:
            made.append(model_uri)
            time.sleep(0.5)  # the upload: the other worker decides meanwhile
            return str(client.create_model_version(name, model_uri, run_id=run_id).version)

        monkeypatch.setattr(registry, "create_version", create_version)
        both_read = threading.Barrier(2)
        passed = threading.Event()
        local_bundle = study_module.bundle_dir

        def bundle_dir_after_both_read(run: str) -> Path:
            # Called by each worker right after it read the registration's record.
            if not passed.is_set():
                both_read.wait(timeout=30)
                passed.set()
            return local_bundle(run)

        monkeypatch.setattr(study_module, "bundle_dir", bundle_dir_after_both_read)
        cfg = compose_config(TINY)
        answers: list[str | None] = []

        def worker() -> None:
            study = optuna.load_study(study_name="race", storage=storage)
            answers.append(_register_best(study, cfg, ran=[0]))

        workers = [threading.Thread(target=worker) for _ in range(2)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=120)
        assert len(made) == 1
        assert "1" in answers and set(answers) <= {None, "1"}
        assert [str(v.version) for v in client.search_model_versions("name='digits-cnn'")] == ["1"]
        record = optuna.load_study(study_name="race", storage=storage).user_attrs
        assert record[REGISTERING_ATTR.format(run_id=run_id)]["done"] is True


def test_a_claim_whose_worker_died_before_its_record_is_claimed_past(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed between the claim and the record (the two are one hold against Ctrl-C):
    # the next run waits a moment for the record, then claims the next attempt.
    client, study, run_id = _registered_study()
    monkeypatch.setattr(study_module, "CLAIM_RECORD_WAIT_S", 0.5)
    monkeypatch.setattr(
        registry,
        "create_version",
        lambda uri, name, bundle=None: str(
            client.create_model_version(name, uri, run_id=run_id).version
        ),
    )
    claim = study_module.CLAIM_STUDY.format(study=study.study_name, run_id=run_id, attempt=0)
    optuna.create_study(study_name=claim, storage=study._storage)
    assert _register_best(study, compose_config(TINY), ran=[0]) == "1"
    record = study.user_attrs[REGISTERING_ATTR.format(run_id=run_id)]
    assert record["done"] is True and record["attempt"] == 1
