"""Registering a study's best model as ``candidate``: once, however many workers finish
the study at the same moment, and finished by a rerun when Ctrl-C cut it short.

The study records each registration in a user attribute (:data:`REGISTERING_ATTR`).
Each attempt at one is first claimed by creating an empty study in the study's own
storage (:data:`CLAIM_STUDY`): a storage creates a study name once, so of the workers
that find the registration unbegun (or cut) at the same moment, one registers. The
claim studies stay in the storage (they show in optuna-dashboard and ``optuna
studies``), one per attempt, usually one per study.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from modelyard import registry, tracking
from modelyard.config.schema import Config
from modelyard.paths import bundle_dir
from modelyard.tune.pruning import RUN_ID_ATTR
from modelyard.tune.storage import STUDY_TAG

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

MODEL_URI_ATTR = "model_uri"
"""The trial's user attribute holding its model's URI (set when its training ends)."""
TRIAL_TAG = "modelyard.tune.trial"
REGISTERING_ATTR = "modelyard.registering.{run_id}"
"""The study's record of the registration of run ``run_id``'s model as its best (one
record per run, so workers registering different runs do not overwrite each other's):
when it began (versions of the run made since are its), when its attempt was claimed,
which attempt it is, and whether it is done or was cut short by Ctrl-C."""
STALE_REGISTRATION_S = 3600.0
"""A registration neither done nor cut this long after its attempt was claimed was a
crashed worker's: a rerun finishes it. Until then it is taken to be another worker's,
still uploading."""
CLOCK_SKEW_S = 60.0
"""How far the tracking server's clock may trail this machine's: a version of the run
made from this long before the registration began is taken to be that registration's."""
CLAIM_STUDY = "{study}.registration.{run_id}.{attempt}"
"""The empty study whose creation claims attempt ``attempt`` at registering run
``run_id``'s model."""
CLAIMED_AT_ATTR = "claimed_at"
"""The claim study's user attribute: when it was made (or first seen without it)."""
CLAIM_RECORD_WAIT_S = 2.0
"""How long a worker that lost a claim waits for the winner's record (written in the
same moment as the claim), to say whether the winner is at it or done."""
_MAX_STUDY_NAME = 200
"""Study names longer than this are hashed in claim names (storages index 512 characters)."""


def register_best(study: optuna.Study, cfg: Config, ran: Sequence[int]) -> str | None:
    """Register the best trial's model as ``candidate``, once: the version it already
    has, if any, is returned and the alias left where it is.

    Moving ``candidate`` back to an old version would undo whatever was registered
    since (a later training run, another study); a best trial already registered was
    made ``candidate`` when it was.

    Only a worker that holds the best trial's bundle registers it: the one that ran
    it (``ran``), or another on that machine, even one that ran no trial (a rerun
    after Ctrl-C finds the budget used). Any worker that ran a trial used to, and
    two finishing at once both found no version and both registered one (the second
    alias write failed with a duplicate key on PostgreSQL). The worker that ran the
    final best trial always sees it as the best when it finishes, so it is registered.
    Two workers on that machine finishing at once both registered it too, until each
    attempt was claimed first (:func:`_claim`).

    One that Ctrl-C cut short (the upload takes seconds; the interrupt tells the user
    to rerun) is finished by a rerun that holds the bundle, even one that runs no
    trial: it used to find the budget used and register nothing. It makes the
    version, or points the alias at the version the cut registration made and writes
    its tags. One claimed and neither done nor cut is another worker's, still
    uploading, and left to it for :data:`STALE_REGISTRATION_S`.
    """
    best = study.best_trial
    run_id = best.user_attrs[RUN_ID_ATTR]
    key = REGISTERING_ATTR.format(run_id=run_id)
    record = study.user_attrs.get(key)
    state = _registration_state(record)
    local = bundle_dir(run_id)
    # Any worker that holds the bundle, even a rerun that runs no trial: a
    # registration that a Ctrl-C cut before its record was written is finished too.
    may_register = best.number in ran or local.is_dir()
    claimed: list[dict[str, Any]] = []  # the record of the attempt this worker claims
    try:
        if may_register and state in ("none", "cut"):
            state = _claim(study, key, run_id, record, claimed)
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
                _record_mine(study, key, {**claimed[0], "cut": True})
        raise


def _claim(
    study: optuna.Study,
    key: str,
    run_id: str,
    record: Any,
    claimed: list[dict[str, Any]],
) -> str:
    """Claim the next attempt at a registration that is unbegun (``record`` None) or cut,
    and return the state this worker goes on from.

    Won: the claim, its time and this attempt's record are written in one hold, and
    the record is in ``claimed`` (the caller's) before it is written: a Ctrl-C held
    through the hold, or a second press inside it, then marks it cut. A cut
    registration's attempt keeps its start: versions of the run made since are its.
    Lost: the winner's state, ``open`` or ``done``; a winner cut already is claimed
    past. A claim with no record (its worker stalled, or died between the writes) is
    ``open`` until :data:`STALE_REGISTRATION_S` after it was made, then claimed past.
    """
    from optuna.exceptions import DuplicatedStudyError
    from optuna.study import StudyDirection

    # The study's own storage (Optuna keeps it on the study): a claim is unique
    # wherever the study is shared.
    storage = study._storage
    while True:
        state = _registration_state(record)
        attempt = _attempt(record) + 1
        began = float(record["began"]) if state == "cut" else time.time()
        name = _claim_name(study.study_name, run_id, attempt)
        now = time.time()
        mine = {"began": began, "claimed_at": now, "attempt": attempt, "done": False}
        with tracking.ctrl_c_after_write(), _quiet_optuna():
            try:
                claim = storage.create_new_study([StudyDirection.MINIMIZE], name)
            except DuplicatedStudyError:
                pass
            else:
                # Noted before the two writes: a second press inside either (one not
                # held) still leaves a cut record for a rerun to finish.
                claimed.append({**mine, "cut": False})
                storage.set_study_user_attr(claim, CLAIMED_AT_ATTR, now)
                _record(study, key, claimed[0])
                return state
        theirs = _awaited_record(study, key, attempt)
        if _attempt(theirs) >= attempt:
            if _registration_state(theirs) != "cut":
                return _registration_state(theirs)
            record = theirs  # cut already: claim past it
        elif _claim_is_stale(storage, name):
            record = {"began": began, "claimed_at": 0.0, "attempt": attempt, "cut": True}
        else:
            return "open"


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Without Optuna's INFO line for each study it creates (``tune`` shows Optuna's
    INFO): a claim is no study a user made."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _awaited_record(study: optuna.Study, key: str, attempt: int) -> Any:
    """The registration's record once it belongs to ``attempt`` or later, or as it is
    after :data:`CLAIM_RECORD_WAIT_S`."""
    deadline = time.monotonic() + CLAIM_RECORD_WAIT_S
    theirs = study.user_attrs.get(key)
    while _attempt(theirs) < attempt and time.monotonic() < deadline:
        time.sleep(0.1)
        theirs = study.user_attrs.get(key)
    return theirs


def _claim_is_stale(storage: Any, name: str) -> bool:
    """Whether claim ``name``, which has no record, was made over
    :data:`STALE_REGISTRATION_S` ago. One with no time either (its worker died between
    the two writes) gets the time it is first seen, and ages from there."""
    claim = storage.get_study_id_from_name(name)
    claimed_at = storage.get_study_user_attrs(claim).get(CLAIMED_AT_ATTR)
    if claimed_at is None:
        storage.set_study_user_attr(claim, CLAIMED_AT_ATTR, time.time())
        return False
    return time.time() - float(claimed_at) > STALE_REGISTRATION_S


def _claim_name(study_name: str, run_id: str, attempt: int) -> str:
    if len(study_name) > _MAX_STUDY_NAME:
        digest = hashlib.sha256(study_name.encode()).hexdigest()[:16]
        study_name = f"{study_name[:_MAX_STUDY_NAME]}.{digest}"
    return CLAIM_STUDY.format(study=study_name, run_id=run_id, attempt=attempt)


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
    """:func:`register_best`'s registration under the record this worker claimed
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
            _record_mine(study, key, {**mine, "done": True})
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
        _record_mine(study, key, {**mine, "done": True})
    return version


def _record(study: optuna.Study, key: str, record: dict[str, Any]) -> None:
    """Write a registration's record (see :data:`REGISTERING_ATTR`)."""
    study.set_user_attr(key, record)


def _record_mine(study: optuna.Study, key: str, record: dict[str, Any]) -> None:
    """Write this worker's attempt's record, done or cut, unless the registration is
    done or a later attempt has claimed past this one (after a stall of an hour):
    its record is that worker's."""
    current = study.user_attrs.get(key)
    if _registration_state(current) != "done" and _attempt(current) <= record["attempt"]:
        _record(study, key, record)


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
    """``none`` (no record), ``done``, ``cut`` (by Ctrl-C, or claimed so long ago that
    its worker must have died) or ``open`` (claimed by a worker taken to be at it)."""
    if not isinstance(record, dict):
        return "none"
    if record.get("done"):
        return "done"
    claimed_at = float(record.get("claimed_at", record.get("began")) or 0)
    if record.get("cut") or time.time() - claimed_at > STALE_REGISTRATION_S:
        return "cut"
    return "open"
