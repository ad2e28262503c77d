"""Where a study lives and how workers meet in it.

Study creation is atomic in the storage (its name is unique), so of several
workers started together exactly one creates the study and its MLflow parent run;
the others join and find the parent run's id in the study's attributes.
"""

from __future__ import annotations

import json
import random
import time
import warnings
from typing import TYPE_CHECKING, Any

from modelyard import tracking
from modelyard.config.schema import Config
from modelyard.errors import ConfigError, MissingExtra
from modelyard.paths import home_dir

if TYPE_CHECKING:
    import optuna

PARENT_ATTR = "mlflow_parent_run_id"
STUDY_TAG = "modelyard.tune.study"
# tune.metric -> (study direction, what Lightning logs per epoch for the pruner)
METRICS = {
    "val_loss": ("minimize", "val_loss"),
    "val_accuracy": ("maximize", "val_acc"),
    "val_macro_f1": ("maximize", "val_acc"),
}
_JOIN_WAIT_S = 60.0


def optuna_module() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingExtra(
            "hyperparameter search needs optuna: pip install 'modelyard[tune]'"
        ) from None
    return optuna


def default_storage() -> str:
    """An SQLite file in the modelyard home, beside the MLflow store."""
    home = home_dir()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'optuna.db'}"


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL; Optuna will say so
        return url


def _samplers(cfg: Config) -> tuple[Any, Any]:
    optuna = optuna_module()
    sampler = (
        optuna.samplers.RandomSampler(seed=cfg.tune.seed)
        if cfg.tune.sampler == "random"
        else optuna.samplers.TPESampler(seed=cfg.tune.seed)
    )
    pruner = (
        optuna.pruners.NopPruner()
        if cfg.tune.pruner == "none"
        else optuna.pruners.MedianPruner(
            n_startup_trials=cfg.tune.pruner_startup_trials,
            n_warmup_steps=cfg.tune.pruner_warmup_epochs,
        )
    )
    return sampler, pruner


def open_storage(url: str, attempts: int = 5) -> Any:
    """Open (and on first use create) the study storage.

    Workers started together on an empty database race to create Optuna's tables
    and the loser gets a duplicate-key error; by the retry the tables exist.
    """
    optuna = optuna_module()
    for attempt in range(1, attempts + 1):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # A worker that dies leaves its trial RUNNING; the heartbeat lets the
                # others mark it failed instead of counting it forever.
                return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=120)
        except Exception as error:
            if attempt == attempts:
                # SQLAlchemy's text runs over several lines and ends in a help link.
                lines = str(error).split("(Background on this error")[0].split()
                raise ConfigError(
                    f"cannot open Optuna storage {safe_url(url)}: {' '.join(lines)}"
                ) from None
            time.sleep(random.uniform(0.2, 1.0))
    raise AssertionError("unreachable")


def _identity(cfg: Config) -> dict[str, str]:
    """What every worker of one study must agree on."""
    return {
        "task": cfg.task.name,
        "metric": cfg.tune.metric,
        "space": json.dumps(cfg.tune.space, sort_keys=True),
    }


def open_study(
    name: str, storage: Any, cfg: Config, experiment_id: str, pruner: Any
) -> tuple[optuna.Study, str]:
    """Create the study, or join it; return it with its MLflow parent run id.

    Study creation is atomic in the storage (unique name), so exactly one worker
    creates the study and its parent run; the others wait for the run id to appear.
    The creator holds Ctrl-C from the study's creation to the parent's id written
    in it (:func:`~modelyard.tracking.ctrl_c_after_write`, under a second): a press
    in between left a study with no parent, which a rerun waited a minute for, and
    a parent run ``RUNNING`` that nothing would end.
    """
    optuna = optuna_module()
    direction = METRICS[cfg.tune.metric][0]
    sampler, default_pruner = _samplers(cfg)
    pruner = pruner or default_pruner
    git = tracking.git_info()  # outside the hold: a Ctrl-C reaches git, which then dies
    parent_id: str | None = None
    try:
        with tracking.ctrl_c_after_write():
            study = optuna.create_study(
                study_name=name,
                storage=storage,
                direction=direction,
                sampler=sampler,
                pruner=pruner,
            )
            parent_id = _open_parent(study, name, cfg, experiment_id, git)
    except optuna.exceptions.DuplicatedStudyError:
        pass
    except KeyboardInterrupt:
        _end_unused(parent_id)
        raise
    else:
        assert parent_id is not None
        return study, parent_id
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    joined = study.user_attrs
    for key, mine in _identity(cfg).items():
        if key in joined and joined[key] != mine:
            raise ConfigError(
                f"study '{name}' was started with a different {key} ({joined[key]}); "
                "join it with the same task, tune.metric and search space, or use "
                "another --study"
            ) from None
    deadline = time.monotonic() + _JOIN_WAIT_S
    while PARENT_ATTR not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.2)
    if PARENT_ATTR in study.user_attrs:
        return study, str(study.user_attrs[PARENT_ATTR])
    # The creator died before opening the parent run: this worker opens it.
    try:
        with tracking.ctrl_c_after_write():
            parent_id = _open_parent(study, name, cfg, experiment_id, git)
    except KeyboardInterrupt:
        _end_unused(parent_id)
        raise
    return study, parent_id


def _end_unused(parent_id: str | None) -> None:
    """End ``KILLED`` a parent run this worker opened and a Ctrl-C held until its id
    was in the study, as a Ctrl-C during the trials does: a rerun of the study nests
    its trials under it, and the last worker to stop ends it FINISHED."""
    if parent_id is None:
        return
    from mlflow.tracking import MlflowClient

    with tracking.ctrl_c_after_write():
        MlflowClient().set_terminated(parent_id, "KILLED")


def _open_parent(
    study: optuna.Study, name: str, cfg: Config, experiment_id: str, git: dict[str, str]
) -> str:
    """Open the study's MLflow parent run (tagged with ``git``, the checkout's state)
    and write its id into the study."""
    from mlflow.tracking import MlflowClient

    for key, value in _identity(cfg).items():
        study.set_user_attr(key, value)
    client = MlflowClient()
    parent = client.create_run(
        experiment_id,
        run_name=f"tune {name}",
        tags={STUDY_TAG: name, "modelyard.kind": "tune", **git},
    )
    parent_id = parent.info.run_id
    client.log_param(parent_id, "tune.metric", cfg.tune.metric)
    client.log_param(parent_id, "tune.space", json.dumps(cfg.tune.space, sort_keys=True))
    study.set_user_attr(PARENT_ATTR, parent_id)
    return str(parent_id)
