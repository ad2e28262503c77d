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
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from modelyard import registry, tracking
from modelyard.bundle import read_bundle
from modelyard.config import compose_config
from modelyard.config.schema import Config
from modelyard.errors import ConfigError, ModelyardError
from modelyard.paths import bundle_dir
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
INTERRUPTED_ATTR = "interrupted"
"""Set on a trial that Ctrl-C stopped: it is failed, and not counted in the budget."""
REGISTERING_ATTR = "modelyard.registering"
"""The study's record of its best model's registration: the run, the worker making it
(host, pid) and whether it is done. A rerun that runs no trial finishes one that a
Ctrl-C or a crash cut short, and leaves one that a live worker is making to it."""


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


def _register_best(study: optuna.Study, cfg: Config, ran: Sequence[int]) -> str | None:
    """Register the best trial's model as ``candidate``, once: the version it already
    has, if any, is returned and the alias left where it is.

    Moving ``candidate`` back to an old version would undo whatever was registered
    since (a later training run, another study); a best trial already registered was
    made ``candidate`` when it was.

    Only a worker that holds the best trial's bundle registers it: the one that ran
    it (``ran``), or another on that machine. Any worker that ran a trial used to, and
    two finishing at once both found no version and both registered one (the second
    alias write failed with a duplicate key on PostgreSQL). The worker that ran the
    final best trial always sees it as the best when it finishes, so it is registered.

    The study records the registration before it begins and when it is done
    (:data:`REGISTERING_ATTR`). A worker that ran no trial (a rerun of a study whose
    budget is used) finishes one left cut short (by Ctrl-C during the upload, which
    tells the user to rerun, or a crash): the version, or the alias and tags a version
    already made lacks. It used to register nothing. A registration that a live
    process on this machine is making is left to it.
    """
    from mlflow.tracking import MlflowClient

    best = study.best_trial
    run_id, model_uri = best.user_attrs[RUN_ID_ATTR], best.user_attrs[MODEL_URI_ATTR]
    local = bundle_dir(run_id)
    state = _registration(study, run_id)
    if state == "live":
        return None  # another worker here is registering it
    cut = state == "cut"
    # Done once is done: a version deleted since is not registered again.
    registers = state != "done" and (bool(ran) or cut) and (best.number in ran or local.is_dir())
    if registers:
        with tracking.ctrl_c_after_write():
            _record_registration(study, run_id, done=False)
    client = MlflowClient()
    name = cfg.task.model_name
    existing = [
        int(v.version)
        for v in client.search_model_versions(f"name='{name}'", max_results=1000)
        if v.run_id == run_id
    ]
    if existing and not cut:
        if registers:
            with tracking.ctrl_c_after_write():
                _record_registration(study, run_id, done=True)
        return str(min(existing))
    if not registers:
        return None  # no trial ran here, or another machine's best: it registers it
    if existing:  # made before the cut; its alias and tags were not
        version = str(min(existing))
        registry.point_alias(name, registry.CANDIDATE, version)
    else:
        # Registering takes seconds (the bundle is uploaded) and stays open to Ctrl-C;
        # the writes after it are held (tracking.ctrl_c_after_write).
        version = registry.register(model_uri, name, bundle_dir=local if local.is_dir() else None)
    tags = {
        STUDY_TAG: study.study_name,
        TRIAL_TAG: str(best.number),
        "modelyard.tune.metric": cfg.tune.metric,
        "modelyard.tune.value": repr(best.value),
    }
    with tracking.ctrl_c_after_write():
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        _record_registration(study, run_id, done=True)
    return version


def _registration(study: optuna.Study, run_id: str) -> str:
    """What the study's record says of ``run_id``'s registration: ``none``,
    ``done``, ``live`` (begun by a process that still runs) or ``cut`` (begun by one
    that is gone, and never done)."""
    record = study.user_attrs.get(REGISTERING_ATTR)
    if not isinstance(record, dict) or record.get("run_id") != run_id:
        return "none"
    if record.get("done"):
        return "done"
    return "live" if _still_running(record) else "cut"


def _still_running(record: Mapping[str, Any]) -> bool:
    """Whether the process a record names still runs. One on another host cannot be
    checked from here and is taken to; a record of this process's own pid is an
    earlier process's, whose pid came round again."""
    pid = record.get("pid")
    if record.get("host") != socket.gethostname():
        return True
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _record_registration(study: optuna.Study, run_id: str, done: bool) -> None:
    record = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(), "done": done}
    study.set_user_attr(REGISTERING_ATTR, record)


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
    study, parent_id = open_study(name, store, cfg, experiment_id, pruner)
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
        version = _register_best(study, cfg, ran) if register else None
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
