"""``tune()``: an Optuna study over ``modelyard train``, tracked as nested MLflow runs.

Every trial is an ordinary training run (same config schema, same bundle) with a
pruning callback, logged as a child of one parent run per study. Several
processes, on one machine or many, share a study by pointing at the same storage
(``postgresql://...``) and study name; ``--trials`` is the study's total budget, so
they split it. The best trial's bundle is registered as ``candidate``.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from modelyard import tracking
from modelyard.bundle import read_bundle
from modelyard.config import compose_config
from modelyard.config.schema import Config
from modelyard.errors import ConfigError, ModelyardError
from modelyard.tune.pruning import RUN_ID_ATTR, OptunaPruning
from modelyard.tune.registration import MODEL_URI_ATTR, TRIAL_TAG, register_best
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

logger = logging.getLogger(__name__)

INTERRUPTED_ATTR = "interrupted"
"""Set on a trial that Ctrl-C stopped: it is failed, and not counted in the budget."""


class TuneInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``tune``: the trials it was running are marked failed (and not
    counted in the budget), the MLflow runs ended ``KILLED``. Running ``tune`` again
    with the same ``--study`` continues the study."""

    def __init__(self, study: str, failed: list[int]):
        self.study = study
        self.failed = failed
        super().__init__(
            f"interrupted; {self.outcome}; run the same command with --study {study} "
            "to continue the study"
        )

    @property
    def outcome(self) -> str:
        """What became of the trials this worker was running, in a few words."""
        if not self.failed:
            return "no trial was running"
        numbers = ", ".join(map(str, self.failed))
        return f"trial {numbers} marked failed, not counted in --trials"


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
    optuna_lib = optuna_module()
    from mlflow.tracking import MlflowClient

    from modelyard.train.run import STATUS_TAG, train

    monitor = METRICS[cfg.tune.metric][1]

    def objective(trial: optuna.Trial) -> float:
        try:
            return run_trial(trial)
        except KeyboardInterrupt:
            # Optuna marks the trial failed and re-raises; this says why (and keeps it
            # out of the budget, so the study's rerun trains it again). Also a Ctrl-C
            # held in the trial's own writes below: the trial's result is then lost
            # and its MLflow run, complete or pruned, stays as it was written.
            trial.set_user_attr(INTERRUPTED_ATTR, True)
            raise

    def run_trial(trial: optuna.Trial) -> float:
        ran.append(trial.number)
        values = {p.key: p.suggest(trial) for p in params}
        # Trials are not registered one by one: only the study's best becomes candidate.
        trial_cfg = compose_config(
            [*overrides, *(override(k, v) for k, v in values.items()), "tracking.register=false"]
        )
        client = MlflowClient()
        pruned = False
        try:
            result = train(
                trial_cfg,
                callbacks=[OptunaPruning(trial, monitor)],
                parent_run_id=parent_id,
                run_name=f"trial {trial.number}",
            )
        except optuna_lib.TrialPruned:
            pruned = True
            raise
        finally:
            run_id = trial.user_attrs.get(RUN_ID_ATTR)
            if run_id:
                tags = {STUDY_TAG: trial.study.study_name, TRIAL_TAG: str(trial.number)}
                if pruned:
                    tags[STATUS_TAG] = "pruned"
                # Held (tracking.ctrl_c_after_write): a Ctrl-C here, the first or one
                # after the Ctrl-C that stopped the trial, would leave the store locked
                # for the parent run's close that follows it.
                with tracking.ctrl_c_after_write():
                    for tag, text in tags.items():
                        client.set_tag(run_id, tag, text)
                    if pruned:
                        client.set_terminated(run_id, "KILLED")
        value = float(read_bundle(result.bundle_path).metrics[f"best_{cfg.tune.metric}"])
        with tracking.ctrl_c_after_write():
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


def _close_parent(
    study: optuna.Study, parent_id: str, cfg: Config, version: str | None, status: str = "FINISHED"
) -> None:
    from mlflow.tracking import MlflowClient

    optuna = optuna_module()
    client = MlflowClient()
    trials = study.get_trials(deepcopy=False)
    states = optuna.trial.TrialState
    # Every worker of a study closes the parent run when it stops, maybe at the same
    # moment as another: each write may race one (tracking.write_racing).
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    for state in (states.COMPLETE, states.PRUNED, states.FAIL):
        metrics[f"trials_{state.name.lower()}"] = sum(t.state == state for t in trials)
    if any(t.state == states.COMPLETE for t in trials):
        best = study.best_trial
        if best.value is not None:
            metrics[f"best_{cfg.tune.metric}"] = best.value
        tags["modelyard.tune.best_trial"] = str(best.number)
        for key, value in best.params.items():
            tags[f"best.{key}"] = str(value)
    if version:
        tags["modelyard.tune.candidate_version"] = version
    # Other workers may still be training: the last one to finish closes the run.
    last = not any(t.state == states.RUNNING for t in trials)
    # One hold for the whole close; a racing write's pauses, under a second and only
    # when workers collide, are held with it.
    with tracking.ctrl_c_after_write():
        for metric, number in metrics.items():
            tracking.write_racing(functools.partial(client.log_metric, parent_id, metric, number))
        for tag, text in tags.items():
            tracking.write_racing(functools.partial(client.set_tag, parent_id, tag, text))
        if last:
            client.set_terminated(parent_id, status)


class _QuietInterrupt(logging.Filter):
    """Drop Optuna's "trial failed" traceback when the failure is Ctrl-C: the
    command then says in one line what became of the trial (``--debug`` keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


def _budget_used(study: optuna.Study) -> int:
    """Trials that count against ``--trials``: all but those Ctrl-C stopped."""
    return sum(not t.user_attrs.get(INTERRUPTED_ATTR) for t in study.get_trials(deepcopy=False))


def _stop_at_budget(trials: int) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """An Optuna callback that stops the study once it holds ``trials`` trials, running
    ones included: the budget is shared by all workers."""

    def stop(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if _budget_used(study) >= trials:
            study.stop()

    return stop


def _fail_interrupted(study: optuna.Study, numbers: Sequence[int]) -> list[int]:
    """Mark this worker's trials that are still running failed and interrupted.

    Optuna fails a trial whose objective raised ``KeyboardInterrupt`` itself; this
    covers a Ctrl-C that landed in Optuna's own code around the objective. Otherwise
    the trial would stay running, counted in the budget, until a heartbeat expired.
    """
    optuna = optuna_module()
    states = optuna.trial.TrialState
    storage = study._storage
    failed = []
    for trial in study.get_trials(deepcopy=False):
        if trial.number not in numbers:
            continue
        if trial.state == states.RUNNING:
            storage.set_trial_user_attr(trial._trial_id, INTERRUPTED_ATTR, True)
            storage.set_trial_state_values(trial._trial_id, states.FAIL)
            failed.append(trial.number)
        elif trial.state == states.FAIL and trial.user_attrs.get(INTERRUPTED_ATTR):
            failed.append(trial.number)
    return failed


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
    try:
        study, parent_id = open_study(name, store, cfg, experiment_id, pruner)
    except KeyboardInterrupt as interrupt:  # the study is whole, or not made: rerun
        raise TuneInterrupted(name, []) from interrupt
    ran: list[int] = []
    optuna.logging.set_verbosity(optuna.logging.INFO)

    if _budget_used(study) < trials:
        optuna_log = logging.getLogger("optuna.study._optimize")
        quiet = None if os.environ.get("MODELYARD_DEBUG") else _QuietInterrupt()
        if quiet:
            optuna_log.addFilter(quiet)
        try:
            study.optimize(
                _objective(overrides, cfg, params, parent_id, ran),
                n_trials=trials,
                timeout=timeout,
                callbacks=[_stop_at_budget(trials)],
                catch=(ModelyardError,),
            )
        except KeyboardInterrupt as interrupt:
            raise _interrupted(study, parent_id, cfg, ran) from interrupt
        finally:
            if quiet:
                optuna_log.removeFilter(quiet)
    all_trials = study.get_trials(deepcopy=False)
    completed = [t for t in all_trials if t.state == optuna.trial.TrialState.COMPLETE]
    register = completed and cfg.tracking.register
    try:  # registration takes seconds: a Ctrl-C there still closes the parent KILLED
        version = register_best(study, cfg, ran) if register else None
    except KeyboardInterrupt as interrupt:
        raise _interrupted(study, parent_id, cfg, ran) from interrupt
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


def _interrupted(
    study: optuna.Study, parent_id: str, cfg: Config, ran: list[int]
) -> TuneInterrupted:
    """Fail this worker's unfinished trials, close the parent run ``KILLED`` (unless
    other workers are still training), and say how to continue."""
    failed = _fail_interrupted(study, ran)
    _close_parent(study, parent_id, cfg, None, status="KILLED")
    return TuneInterrupted(study.study_name, failed)
