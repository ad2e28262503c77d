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
import time
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

logger = logging.getLogger(__name__)

MODEL_URI_ATTR = "model_uri"
TRIAL_TAG = "modelyard.tune.trial"
INTERRUPTED_ATTR = "interrupted"
"""Set on a trial that Ctrl-C stopped: it is failed, and not counted in the budget."""
REGISTERING_ATTR = "modelyard.registering.{run_id}"
"""The study's record of the registration of run ``run_id``'s model as its best: when
it began, and whether it is done or was cut short by Ctrl-C (one record per run, so
workers registering different runs do not overwrite each other's)."""
STALE_REGISTRATION_S = 3600.0
"""A registration neither done nor cut after this long was a crashed worker's: a
rerun finishes it. Until then it is taken to be another worker's, still uploading."""
CLOCK_SKEW_S = 60.0
"""How far the tracking server's clock may trail this machine's: a version of the run
made from this long before the registration began is taken to be that registration's."""
CLAIM_STUDY = "{study}.registration.{run_id}.{attempt}"
"""An empty study whose creation claims attempt ``attempt`` at registering run
``run_id``'s model: the storage creates a study name once, so of two workers that
find the registration unbegun (or cut) at the same moment, one registers."""
CLAIM_RECORD_WAIT_S = 10.0
"""How long a worker that lost a claim waits for the winner's record; a claim with no
record after this was made by a worker that died between the two writes."""


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

    The study records each registration (:data:`REGISTERING_ATTR`). One that Ctrl-C
    cut short (the upload takes seconds; the interrupt tells the user to rerun) is
    finished by a rerun that holds the bundle, even one that runs no trial: it used
    to find the budget used and register nothing. It makes the version, or points
    the alias at the version the cut registration made and writes its tags. One
    begun and neither done nor cut is another worker's, still uploading, and left to
    it for :data:`STALE_REGISTRATION_S`.

    Two workers on the machine that holds the bundle, finding the registration
    unbegun (or cut) at the same moment, both registered it, and the model got two
    versions. Each attempt is now claimed first (:func:`_claim`): the storage
    creates a study name once, so one of them registers and the other leaves it.
    """
    best = study.best_trial
    run_id = best.user_attrs[RUN_ID_ATTR]
    key = REGISTERING_ATTR.format(run_id=run_id)
    record = study.user_attrs.get(key)
    state = _registration_state(record)
    local = bundle_dir(run_id)
    may_register = (bool(ran) or state == "cut") and (best.number in ran or local.is_dir())
    claimed: list[dict[str, Any]] = []  # the record of the attempt this worker claims
    try:
        if may_register and state in ("none", "cut"):
            record, state = _claim(study, key, run_id, record, claimed)
        if state == "open" or (state == "cut" and not claimed):
            _left_unregistered(run_id, state)
            return None
        if not claimed:  # done, or never this worker's to make: report the version
            return _register(study, cfg, best, None, key)
        return _register(study, cfg, best, claimed[0], key)
    except KeyboardInterrupt:
        if claimed:
            # A press held through the last hold arrives after the record says done.
            with tracking.ctrl_c_after_write():
                if _registration_state(study.user_attrs.get(key)) != "done":
                    _record(study, key, {**claimed[0], "cut": True})
        raise


def _claim(
    study: optuna.Study,
    key: str,
    run_id: str,
    record: Any,
    claimed: list[dict[str, Any]],
) -> tuple[Any, str]:
    """Claim the next attempt at a registration that is unbegun (``record`` None) or cut;
    return the record and state this worker goes on from.

    Won: the claim and this attempt's record are written in one hold, and the record
    is appended to ``claimed`` (the caller's: a Ctrl-C held through the hold arrives
    after it, and the caller marks that record cut). A cut registration's attempt
    keeps its start: versions of the run made since are its. Lost: the winner's
    record and state (``open``, ``done``; a winner cut already is claimed past).
    Only a worker that dies between the claim and the record leaves a claim with no
    record; after :data:`CLAIM_RECORD_WAIT_S` the next attempt is claimed instead.
    """
    from optuna.exceptions import DuplicatedStudyError

    optuna = optuna_module()
    while True:
        state = _registration_state(record)
        attempt = _attempt(record) + 1
        began = float(record["began"]) if state == "cut" else time.time()
        name = CLAIM_STUDY.format(study=study.study_name, run_id=run_id, attempt=attempt)
        with tracking.ctrl_c_after_write():
            try:
                # The study's own storage (Optuna keeps it on the study), so the claim is
                # unique wherever the study is shared.
                optuna.create_study(study_name=name, storage=study._storage)
            except DuplicatedStudyError:
                pass
            else:
                mine = {"began": began, "attempt": attempt, "done": False, "cut": False}
                _record(study, key, mine)
                claimed.append(mine)
                return mine, state
        deadline = time.monotonic() + CLAIM_RECORD_WAIT_S
        theirs = study.user_attrs.get(key)
        while _attempt(theirs) < attempt and time.monotonic() < deadline:
            time.sleep(0.2)
            theirs = study.user_attrs.get(key)
        if _attempt(theirs) < attempt:  # its claimer died before writing the record
            record = {**(record or {"began": time.time()}), "attempt": attempt, "cut": True}
        elif _registration_state(theirs) == "cut":
            record = theirs
        else:
            return theirs, _registration_state(theirs)


def _attempt(record: Any) -> int:
    """The attempt a registration's record belongs to (-1: no record; records written
    before attempts were counted are attempt 0)."""
    return int(record.get("attempt", 0)) if isinstance(record, dict) else -1


def _register(
    study: optuna.Study,
    cfg: Config,
    best: optuna.trial.FrozenTrial,
    mine: dict[str, Any] | None,
    key: str,
) -> str | None:
    """:func:`_register_best`'s registration under the record this worker claimed
    (``mine``; None: it only reports a version already registered)."""
    from mlflow.tracking import MlflowClient

    run_id, model_uri = best.user_attrs[RUN_ID_ATTR], best.user_attrs[MODEL_URI_ATTR]
    client = MlflowClient()
    name = cfg.task.model_name
    versions = [
        v
        for v in client.search_model_versions(f"name='{name}'", max_results=1000)
        if v.run_id == run_id
    ]
    if mine is None:
        return str(min(int(v.version) for v in versions)) if versions else None
    since = (float(mine["began"]) - CLOCK_SKEW_S) * 1000
    made = [int(v.version) for v in versions if int(v.creation_timestamp or 0) >= since]
    if versions and not made:
        # Registered before this registration began: its alias was moved then.
        with tracking.ctrl_c_after_write():
            _record(study, key, {**mine, "done": True})
        return str(min(int(v.version) for v in versions))
    # Making the version takes seconds (the bundle is uploaded) and stays open to
    # Ctrl-C; the writes after it are one hold.
    local = bundle_dir(run_id)
    version = (
        str(min(made))
        if made
        else registry.create_version(model_uri, name, local if local.is_dir() else None)
    )
    tags = {
        STUDY_TAG: study.study_name,
        TRIAL_TAG: str(best.number),
        "modelyard.tune.metric": cfg.tune.metric,
        "modelyard.tune.value": repr(best.value),
    }
    with tracking.ctrl_c_after_write():
        registry.point_alias(name, registry.CANDIDATE, version)
        for tag, value in tags.items():
            client.set_model_version_tag(name, version, tag, value)
        _record(study, key, {**mine, "done": True})
    return version


def _record(study: optuna.Study, key: str, record: dict[str, Any]) -> None:
    """Write a registration's record (see :data:`REGISTERING_ATTR`): when it began, which
    attempt it is, whether it is done or was cut."""
    study.set_user_attr(key, record)


def _left_unregistered(run_id: str, state: str) -> None:
    """Say why this worker leaves the best model unregistered: another worker is at it
    (``open``), or a cut registration's bundle is on another machine (``cut``; the
    version it may have made is not candidate, so it is not reported)."""
    if state == "open":
        logger.warning(
            "the best trial's model (run %s) is being registered by another worker; "
            "leaving it to that one (a registration not done in %.0f minutes is taken "
            "over by the next run of this study)",
            run_id,
            STALE_REGISTRATION_S / 60,
        )
    else:
        logger.warning(
            "the best trial's model (run %s) was being registered and did not finish "
            "(Ctrl-C, or a worker that died); run this study again on the machine that "
            "holds its bundle to finish it",
            run_id,
        )


def _registration_state(record: Any) -> str:
    """``none`` (no record), ``done``, ``cut`` (by Ctrl-C, or begun so long ago that
    its worker must have died) or ``open`` (begun by a worker taken to be at it)."""
    if not isinstance(record, dict):
        return "none"
    if record.get("done"):
        return "done"
    if record.get("cut") or time.time() - float(record.get("began", 0)) > STALE_REGISTRATION_S:
        return "cut"
    return "open"


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
