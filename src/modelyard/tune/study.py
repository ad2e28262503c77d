"""``tune()``: an Optuna study over ``modelyard train``, tracked as nested MLflow runs.

Every trial is an ordinary training run (same config schema, same bundle) with a
pruning callback, logged as a child of one parent run per study. Several
processes, on one machine or many, share a study by pointing at the same storage
(``postgresql://...``) and study name; ``--trials`` is the study's total budget, so
they split it. The best trial's bundle is registered as ``candidate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from modelyard import registry, tracking
from modelyard.bundle import read_bundle
from modelyard.config import compose_config
from modelyard.config.schema import Config
from modelyard.errors import ConfigError, ModelyardError
from modelyard.tune.pruning import RUN_ID_ATTR, OptunaPruning
from modelyard.tune.space import Param, corners, override, parse_space
from modelyard.tune.storage import (
    METRICS,
    STUDY_TAG,
    default_storage,
    open_storage,
    open_study,
    optuna_module,
    safe_url,
)

if TYPE_CHECKING:
    import optuna

MODEL_URI_ATTR = "model_uri"
TRIAL_TAG = "modelyard.tune.trial"


@dataclass(frozen=True)
class TrialSummary:
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    run_id: str | None


@dataclass(frozen=True)
class TuneResult:
    study: str
    storage: str
    """The storage URL with any password hidden."""
    metric: str
    direction: str
    parent_run_id: str
    budget: int
    ran_here: list[int]
    """Numbers of the trials this process ran (the rest ran in other workers)."""
    trials: list[TrialSummary] = field(default_factory=list)
    best: TrialSummary | None = None
    model_name: str = ""
    model_version: str | None = None

    def counts(self) -> dict[str, int]:
        states = [t.state for t in self.trials]
        return {state: states.count(state) for state in sorted(set(states))}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts()}


def check_space(overrides: Sequence[str], cfg: Config) -> list[Param]:
    """Parse ``tune.space`` and compose a config at each end of every range, so a
    value the schema rejects fails now rather than in trial 17."""
    params = parse_space(cfg.tune.space)
    for probe in corners(params):
        try:
            compose_config([*overrides, *probe])
        except ConfigError as error:
            raise ConfigError(f"tune.space: {probe[0]} is not a valid config: {error}") from None
    return params


def _objective(
    overrides: Sequence[str], cfg: Config, params: list[Param], parent_id: str, ran: list[int]
) -> Any:
    optuna = optuna_module()
    from mlflow.tracking import MlflowClient

    from modelyard.train.run import STATUS_TAG, train

    monitor = METRICS[cfg.tune.metric][1]

    def objective(trial: optuna.Trial) -> float:
        ran.append(trial.number)
        values = {p.key: p.suggest(trial) for p in params}
        # Trials are not registered one by one: only the study's best becomes candidate.
        trial_cfg = compose_config(
            [*overrides, *(override(k, v) for k, v in values.items()), "tracking.register=false"]
        )
        client = MlflowClient()
        try:
            result = train(
                trial_cfg,
                callbacks=[OptunaPruning(trial, monitor)],
                parent_run_id=parent_id,
                run_name=f"trial {trial.number}",
            )
        except optuna.TrialPruned:
            run_id = trial.user_attrs.get(RUN_ID_ATTR)
            if run_id:
                client.set_tag(run_id, STATUS_TAG, "pruned")
                client.set_terminated(run_id, "KILLED")
            raise
        finally:
            run_id = trial.user_attrs.get(RUN_ID_ATTR)
            if run_id:
                client.set_tag(run_id, STUDY_TAG, trial.study.study_name)
                client.set_tag(run_id, TRIAL_TAG, str(trial.number))
        value = float(read_bundle(result.bundle_path).metrics[f"best_{cfg.tune.metric}"])
        trial.set_user_attr(RUN_ID_ATTR, result.run_id)
        trial.set_user_attr(MODEL_URI_ATTR, result.model_uri)
        client.log_metric(result.run_id, f"tune_{cfg.tune.metric}", value)
        return value

    return objective


def _summary(trial: optuna.trial.FrozenTrial) -> TrialSummary:
    return TrialSummary(
        number=trial.number,
        state=trial.state.name.lower(),
        value=trial.value,
        params=dict(trial.params),
        run_id=trial.user_attrs.get(RUN_ID_ATTR),
    )


def _register_best(study: optuna.Study, cfg: Config) -> str | None:
    """Point ``candidate`` at the best trial's model, registering it once."""
    from mlflow.tracking import MlflowClient

    best = study.best_trial
    run_id, model_uri = best.user_attrs[RUN_ID_ATTR], best.user_attrs[MODEL_URI_ATTR]
    client = MlflowClient()
    name = cfg.task.model_name
    # Another worker may already have registered this trial: reuse its version.
    existing = [
        v
        for v in client.search_model_versions(f"name='{name}'", max_results=1000)
        if v.run_id == run_id
    ]
    if existing:
        version = str(existing[0].version)
        client.set_registered_model_alias(name, registry.CANDIDATE, version)
    else:
        version = registry.register(model_uri, name)
    for key, value in {
        STUDY_TAG: study.study_name,
        TRIAL_TAG: str(best.number),
        "modelyard.tune.metric": cfg.tune.metric,
        "modelyard.tune.value": repr(best.value),
    }.items():
        client.set_model_version_tag(name, version, key, value)
    return version


def _close_parent(study: optuna.Study, parent_id: str, cfg: Config, version: str | None) -> None:
    from mlflow.tracking import MlflowClient

    optuna = optuna_module()
    client = MlflowClient()
    trials = study.get_trials(deepcopy=False)
    states = optuna.trial.TrialState
    for state in (states.COMPLETE, states.PRUNED, states.FAIL):
        count = sum(t.state == state for t in trials)
        client.log_metric(parent_id, f"trials_{state.name.lower()}", count)
    if any(t.state == states.COMPLETE for t in trials):
        best = study.best_trial
        client.log_metric(parent_id, f"best_{cfg.tune.metric}", float(best.value))
        client.set_tag(parent_id, "modelyard.tune.best_trial", str(best.number))
        for key, value in best.params.items():
            client.set_tag(parent_id, f"best.{key}", str(value))
    if version:
        client.set_tag(parent_id, "modelyard.tune.candidate_version", version)
    # Other workers may still be training: the last one to finish closes the run.
    if not any(t.state == states.RUNNING for t in trials):
        client.set_terminated(parent_id, "FINISHED")


def tune(
    overrides: Sequence[str],
    trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    timeout: float | None = None,
    pruner: Any = None,
    space: Mapping[str, Any] | None = None,
) -> TuneResult:
    """Run (or join) a study until it holds ``trials`` trials or ``timeout`` passes.

    ``overrides`` are the ``modelyard train`` overrides every trial starts from;
    ``space`` replaces ``tune.space`` (Hydra overrides can only add to a mapping);
    ``pruner`` replaces the configured Optuna pruner (tests, library users).
    """
    optuna = optuna_module()
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    cfg = compose_config(overrides)
    if space is not None:
        cfg.tune.space = dict(space)
    if cfg.train.strategy != "auto":
        # Lightning's DDP launcher re-runs this command for each extra rank, which would
        # join the study as a worker of its own instead of fitting a shard of the trial.
        raise ConfigError(
            f"modelyard tune trains each trial in one process; train.strategy="
            f"{cfg.train.strategy} is for single training runs. To use more cores or "
            "machines, start several 'modelyard tune' workers on the same --storage and "
            "--study."
        )
    params = check_space(overrides, cfg)
    tracking.configure(cfg.tracking.uri)
    experiment_id = tracking.ensure_experiment(cfg.tracking.experiment or cfg.task.name)
    url = storage or default_storage()
    name = study_name or f"{cfg.task.name}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    store = open_storage(url)
    study, parent_id = open_study(name, store, cfg, experiment_id, pruner)
    ran: list[int] = []
    optuna.logging.set_verbosity(optuna.logging.INFO)
    if len(study.trials) < trials:
        study.optimize(
            _objective(overrides, cfg, params, parent_id, ran),
            n_trials=trials,
            timeout=timeout,
            # Counts every trial of the study, running ones included: the budget is
            # shared by all workers.
            callbacks=[optuna.study.MaxTrialsCallback(trials, states=None)],
            catch=(ModelyardError,),
        )
    all_trials = study.get_trials(deepcopy=False)
    completed = [t for t in all_trials if t.state == optuna.trial.TrialState.COMPLETE]
    version = _register_best(study, cfg) if completed and cfg.tracking.register else None
    _close_parent(study, parent_id, cfg, version)
    return TuneResult(
        study=name,
        storage=safe_url(url),
        metric=cfg.tune.metric,
        direction=METRICS[cfg.tune.metric][0],
        parent_run_id=parent_id,
        budget=trials,
        ran_here=sorted(ran),
        trials=[_summary(t) for t in all_trials],
        best=_summary(study.best_trial) if completed else None,
        model_name=cfg.task.model_name,
        model_version=version,
    )
