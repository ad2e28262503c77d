"""The best trial's model registered as ``candidate`` once: by the worker that holds its
bundle, finished by a rerun after Ctrl-C, claimed so that workers finishing at the same
moment make one version, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from tests.helpers import CtrlCInWrite, ctrl_c_inside, finished_study
from tests.postgres import temporary_database

import modelyard.tune.registration as registration
from modelyard import registry, tracking
from modelyard.config import compose_config
from modelyard.paths import bundle_dir
from modelyard.tune.pruning import RUN_ID_ATTR
from modelyard.tune.registration import (
    MODEL_URI_ATTR,
    REGISTERING_ATTR,
    STALE_REGISTRATION_S,
    register_best,
)

pytestmark = pytest.mark.slow

TINY = ["task=digits", "train=fast", "train.max_epochs=2"]


def test_a_ctrl_c_inside_the_candidates_tags_comes_after_them(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "create_version", lambda uri, name, bundle=None: "3")
    monkeypatch.setattr(registry, "point_alias", lambda *args: None)
    ctrl_c = CtrlCInWrite()
    client = ctrl_c.client("set_model_version_tag", search_model_versions=lambda *a, **k: [])
    monkeypatch.setattr("mlflow.tracking.MlflowClient", lambda: client)
    study = finished_study()
    with pytest.raises(KeyboardInterrupt):
        register_best(study, compose_config(TINY), ran=[0])
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
        register_best(study, compose_config(TINY), ran=[0])
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
    assert register_best(study, compose_config(TINY), ran=[]) is None
    assert client.get_registered_model("digits-cnn").aliases == {}
    assert "on the machine that holds its bundle to finish it" in caplog.text


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
    assert register_best(study, cfg, ran=[]) is None
    assert register_best(study, cfg, ran=[0]) is None and asked == []
    study.set_user_attr(key, {"began": time.time() - 2 * STALE_REGISTRATION_S, "done": False})
    assert register_best(study, cfg, ran=[]) == "1" and len(asked) == 1
    assert study.user_attrs[key]["done"] is True
    assert str(client.get_model_version_by_alias("digits-cnn", "candidate").version) == "1"
    assert register_best(study, cfg, ran=[0]) == "1" and len(asked) == 1  # done is done


def test_a_cut_registration_does_not_move_candidate_back_to_an_older_version(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A version of the run made before the cut registration began was registered (and
    # made candidate) then; since, another model became candidate. Finishing the cut
    # registration reports that version and leaves candidate where it is.
    client, study, run_id = _registered_study()
    monkeypatch.setattr(registration, "CLOCK_SKEW_S", 0.0)
    older = client.create_model_version("digits-cnn", f"runs:/{run_id}/model", run_id=run_id)
    other = client.create_run(client.create_experiment("later"))
    newer = client.create_model_version("digits-cnn", "elsewhere", run_id=other.info.run_id)
    client.set_registered_model_alias("digits-cnn", registry.CANDIDATE, newer.version)
    time.sleep(0.01)
    key = REGISTERING_ATTR.format(run_id=run_id)
    study.set_user_attr(key, {"began": time.time(), "done": False, "cut": True})
    assert register_best(study, compose_config(TINY), ran=[]) == str(older.version)
    candidate = client.get_model_version_by_alias("digits-cnn", registry.CANDIDATE)
    assert str(candidate.version) == str(newer.version)


@pytest.mark.parametrize(
    ("backend", "begun"),
    [("sqlite", "never"), ("postgresql", "never"), ("sqlite", "cut over an hour ago")],
)
def test_two_workers_finishing_at_once_register_the_best_once(
    backend: str, begun: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers of one study on one machine (both hold the bundle) find its
    # registration unbegun, or cut, at the same moment: both used to register it, two
    # versions. The winner of a cut registration's claim keeps its old start, which
    # must not make the loser take the winner's fresh record for stale.
    with contextlib.ExitStack() as stack:
        storage = (
            f"sqlite:///{tmp_path / 'optuna.db'}"
            if backend == "sqlite"
            else stack.enter_context(temporary_database("modelyard_claim"))
        )
        client, study, run_id = _registered_study(storage)
        key = REGISTERING_ATTR.format(run_id=run_id)
        if begun != "never":
            old = time.time() - 2 * STALE_REGISTRATION_S
            study.set_user_attr(key, {"began": old, "done": False, "cut": True})
        made: list[str] = []

        def create_version(model_uri: str, name: str, bundle: object = None) -> str:
            made.append(model_uri)
            time.sleep(0.5)  # the upload: the other worker decides meanwhile
            return str(client.create_model_version(name, model_uri, run_id=run_id).version)

        monkeypatch.setattr(registry, "create_version", create_version)
        both_read = threading.Barrier(2)
        passed = threading.Event()
        local_bundle = registration.bundle_dir

        def bundle_dir_after_both_read(run: str) -> Path:
            # Called by each worker right after it read the registration's record.
            if not passed.is_set():
                both_read.wait(timeout=30)
                passed.set()
            return local_bundle(run)

        monkeypatch.setattr(registration, "bundle_dir", bundle_dir_after_both_read)
        cfg = compose_config(TINY)
        answers: list[str | None] = []

        def worker() -> None:
            study = optuna.load_study(study_name="race", storage=storage)
            answers.append(register_best(study, cfg, ran=[0]))

        workers = [threading.Thread(target=worker) for _ in range(2)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=120)
        assert len(made) == 1
        assert "1" in answers and set(answers) <= {None, "1"}
        assert [str(v.version) for v in client.search_model_versions("name='digits-cnn'")] == ["1"]
        record = optuna.load_study(study_name="race", storage=storage).user_attrs[key]
        assert record["done"] is True


def _registers_versions(monkeypatch: pytest.MonkeyPatch, client: MlflowClient, run_id: str) -> None:
    monkeypatch.setattr(
        registry,
        "create_version",
        lambda uri, name, bundle=None: str(
            client.create_model_version(name, uri, run_id=run_id).version
        ),
    )


def test_a_claim_with_no_record_is_left_to_its_worker_for_an_hour_then_claimed_past(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its worker stalled (or died) between the claim and the record: taking it over at
    # once made two versions when a stalled one went on.
    client, study, run_id = _registered_study()
    monkeypatch.setattr(registration, "CLAIM_RECORD_WAIT_S", 0.2)
    _registers_versions(monkeypatch, client, run_id)
    claim = registration.CLAIM_STUDY.format(study=study.study_name, run_id=run_id, attempt=0)
    storage = study._storage
    claim_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], claim)
    cfg = compose_config(TINY)
    assert register_best(study, cfg, ran=[0]) is None  # left to it; first seen now
    assert client.search_model_versions("name='digits-cnn'") == []
    seen = storage.get_study_user_attrs(claim_id)[registration.CLAIMED_AT_ATTR]
    assert time.time() - seen < 60
    storage.set_study_user_attr(
        claim_id, registration.CLAIMED_AT_ATTR, time.time() - 2 * STALE_REGISTRATION_S
    )
    assert register_best(study, cfg, ran=[0]) == "1"
    record = study.user_attrs[REGISTERING_ATTR.format(run_id=run_id)]
    assert record["done"] is True and record["attempt"] == 1


def test_a_ctrl_c_marks_only_this_workers_attempt_cut(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While this worker uploaded, another claimed past it (after a stall of an hour):
    # this one's Ctrl-C used to mark that worker's record cut, and a third worker then
    # claimed past it too.
    _, study, run_id = _registered_study()
    key = REGISTERING_ATTR.format(run_id=run_id)
    theirs = {"began": time.time(), "claimed_at": time.time(), "attempt": 5, "done": False}

    def create_version(model_uri: str, name: str, bundle: object = None) -> str:
        study.set_user_attr(key, {**theirs, "cut": False})
        raise KeyboardInterrupt

    monkeypatch.setattr(registry, "create_version", create_version)
    with pytest.raises(KeyboardInterrupt):
        register_best(study, compose_config(TINY), ran=[0])
    assert study.user_attrs[key] == {**theirs, "cut": False}


@pytest.mark.parametrize("write", ["the claim's time", "the record"])
def test_a_second_ctrl_c_inside_the_claim_leaves_it_cut_for_a_rerun_to_finish(
    write: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second press is not held: it interrupts the write it lands in. Before the
    # attempt was noted, the claim was left with no record, and the rerun the
    # interrupt asks for (which runs no trial) never registered it.
    client, study, run_id = _registered_study()
    owner = study._storage if write == "the claim's time" else study
    name = "set_study_user_attr" if write == "the claim's time" else "set_user_attr"
    real = getattr(owner, name)
    calls: list[None] = []

    def interrupted(*args: object) -> None:
        calls.append(None)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real(*args)

    with monkeypatch.context() as patch:
        patch.setattr(owner, name, interrupted)
        with pytest.raises(KeyboardInterrupt):
            register_best(study, compose_config(TINY), ran=[0])
    key = REGISTERING_ATTR.format(run_id=run_id)
    assert study.user_attrs[key]["cut"] is True
    _registers_versions(monkeypatch, client, run_id)
    assert register_best(study, compose_config(TINY), ran=[]) == "1"
    assert study.user_attrs[key]["done"] is True
