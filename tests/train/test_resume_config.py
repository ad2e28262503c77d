"""Which run ``modelyard train --resume`` picks, and which overrides it accepts.

The interrupted runs here are made by hand (an MLflow run ended KILLED, its stored
config and a ``last.ckpt`` file): choosing a run reads nothing else, so no training.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tests.conftest import FAST

from modelyard import tracking
from modelyard.config import Config, compose_config, to_yaml
from modelyard.errors import ConfigError, ModelyardError
from modelyard.paths import checkpoint_dir, run_dir
from modelyard.train.run import (
    CONFIG_FILE,
    LAST_CHECKPOINT,
    PARENT_TAG,
    TASK_TAG,
    find_resumable_run,
    resume_config,
)


def _interrupted_run(cfg: Config, tags: dict[str, str] | None = None) -> str:
    """An MLflow run of ``cfg`` left KILLED with a checkpoint, as Ctrl-C leaves one."""
    tracking.configure()
    client = MlflowClient()
    experiment_id = tracking.ensure_experiment(cfg.task.name)
    run = client.create_run(experiment_id, tags={TASK_TAG: cfg.task.name, **(tags or {})})
    run_id = run.info.run_id
    checkpoint_dir(run_id).mkdir(parents=True)
    (checkpoint_dir(run_id) / LAST_CHECKPOINT).write_bytes(b"not read when choosing")
    (run_dir(run_id) / CONFIG_FILE).write_text(to_yaml(cfg))
    client.set_terminated(run_id, "KILLED")
    time.sleep(0.01)  # distinct start times: "newest" is well defined
    return run_id


def test_resume_picks_the_newest_run_of_any_task(home: Path) -> None:
    digits = _interrupted_run(compose_config([*FAST, "train.max_epochs=4"]))
    fashion = _interrupted_run(compose_config(["task=fashion_mnist"]))
    # No task= given: the newest interrupted run, whatever its task (not mnist5k's).
    run_id, cfg = resume_config([])
    assert run_id == fashion and cfg.task.name == "fashion_mnist"
    run_id, cfg = resume_config(["task=digits"])
    assert run_id == digits and cfg.train.max_epochs == 4


def test_resume_names_the_tasks_that_have_an_interrupted_run(home: Path) -> None:
    _interrupted_run(compose_config(FAST))
    with pytest.raises(
        ModelyardError,
        match=r"no interrupted 'mnist5k' run .*interrupted runs exist for: "
        r"digits \(`modelyard train task=digits --resume`\)",
    ):
        resume_config(["task=mnist5k"])


def test_resume_skips_tune_trials(home: Path) -> None:
    # A trial of a study: its sampled hyper-parameters belong to the study.
    _interrupted_run(compose_config(FAST), tags={PARENT_TAG: "0123abcd"})
    with pytest.raises(ModelyardError, match="no interrupted 'digits' run"):
        find_resumable_run("digits")
    with pytest.raises(ModelyardError, match="no interrupted training run"):
        resume_config([])


def test_resume_refuses_a_conflicting_override_by_name(home: Path) -> None:
    run_id = _interrupted_run(compose_config([*FAST, "train.max_epochs=4", "train.lr=0.01"]))
    with pytest.raises(
        ConfigError,
        match=rf"run {run_id} .*conflicts with: train.max_epochs=4 \(override: 5\);",
    ):
        resume_config(["task=digits", "train.max_epochs=5"])
    # A group override is compared key by key: train=fast says max_epochs=3 and lr=3e-3.
    with pytest.raises(ConfigError, match=r"train.max_epochs=4 \(override: 3\), train.lr=0.01"):
        resume_config(["train=fast"])
    # Overrides that agree with the stored config, or only change how the run is
    # shown, are accepted; the latter are applied.
    same, cfg = resume_config(["task=digits", "train.max_epochs=4", "train.progress_bar=true"])
    assert same == run_id
    assert cfg.train.progress_bar and cfg.train.max_epochs == 4 and cfg.train.lr == 0.01
