"""``promote()``: measure challenger and champion, decide, record, move the alias.

The decision, its reason and the numbers are written as tags on the challenger's
model version (``modelyard.gate.<target>...``), refused or not, so the registry
keeps the history and ``modelyard deploy`` can check that a version passed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from modelyard import bundle as bundle_io
from modelyard.choices import PromotionTarget
from modelyard.errors import ConfigError
from modelyard.promote.gate import FORCED, PASSED, Decision, decide
from modelyard.promote.measure import measure
from modelyard.promote.shadow import needs_shadow_evidence, shadow_evidence
from modelyard.registry_client import CANDIDATE
from modelyard.scoring import config_for, labelled_split, tracking_uri_in

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

TARGETS = tuple(PromotionTarget)
TAG_PREFIX = "modelyard.gate"
_TAG_LIMIT = 5000  # MLflow's limit on a model version tag value


def gate_tag(target: str, field: str = "") -> str:
    """``modelyard.gate.staging`` holds the outcome; ``.reason``, ``.numbers``... the rest."""
    return f"{TAG_PREFIX}.{target}" + (f".{field}" if field else "")


@dataclass(frozen=True)
class Promotion:
    decision: Decision | None
    """None when the challenger already held the alias (nothing to decide)."""
    model: str
    target: str
    version: str
    previous: str | None
    """The version that held the alias before (the champion), if any."""
    moved: bool
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        decision = self.decision.to_dict() if self.decision else {"outcome": "unchanged"}
        return {
            **decision,
            "model": self.model,
            "target": self.target,
            "version": self.version,
            "previous": self.previous,
            "moved": self.moved,
            "dry_run": self.dry_run,
        }


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _record(client: MlflowClient, decision: Decision, version: str) -> None:
    target = decision.target
    data = decision.to_dict()
    numbers = json.dumps({k: data[k] for k in ("challenger", "champion", "checks")}, sort_keys=True)
    tags = {
        gate_tag(target): decision.outcome,
        gate_tag(target, "reason"): decision.reason,
        gate_tag(target, "numbers"): numbers,
        gate_tag(target, "champion"): decision.champion.version if decision.champion else "none",
        gate_tag(target, "forced"): str(decision.forced).lower(),
        gate_tag(target, "at"): datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for key, value in tags.items():
        client.set_model_version_tag(decision.model, version, key, value[:_TAG_LIMIT])


def promote(
    name: str,
    target: str,
    *,
    version: str | None = None,
    from_alias: str = CANDIDATE,
    force: bool = False,
    dry_run: bool = False,
    overrides: Sequence[str] = (),
) -> Promotion:
    """Gate ``name`` version ``version`` (or the one ``from_alias`` names) for ``target``.

    A passed (or ``force``-d) decision moves the ``target`` alias unless ``dry_run``;
    a refused one leaves every alias as it was. ``overrides`` adjust the ``promote``
    settings (``promote.min_improvement=0.01``) and the evaluation data.
    """
    if target not in TARGETS:
        raise ConfigError(
            f"--to {target} is not a promotion target; use one of {', '.join(TARGETS)}"
        )
    tracking_uri = tracking_uri_in(overrides)
    # The challenger and its evaluation config come first, through the light registry
    # client: a mistyped name, version, alias or data path fails in about a second,
    # before MLflow's client loads.
    reference = f"models:/{name}/{version}" if version else f"models:/{name}@{from_alias}"
    challenger = bundle_io.load(reference, tracking_uri)
    challenger_version = str(challenger.version)
    # The challenger's own task and training data, unless overridden; the champion is
    # scored on the very same examples.
    cfg = config_for(challenger, overrides)
    from mlflow.tracking import MlflowClient

    from modelyard import tracking

    tracking.configure(tracking_uri)
    client = MlflowClient()
    champion_version = _alias_version(client, name, target)
    if champion_version == challenger_version:
        return Promotion(None, name, target, challenger_version, champion_version, False, dry_run)
    data = labelled_split(challenger, cfg, cfg.promote.split)
    challenger_figures = measure(challenger, data.examples, data.labels, cfg.promote)
    champion_figures = None
    if champion_version is not None:
        champion = bundle_io.load(f"models:/{name}/{champion_version}", tracking_uri)
        champion_figures = measure(
            champion, data.examples, data.labels, cfg.promote, reference_labels=challenger.labels
        )
    shadow = None
    if champion_version is not None and needs_shadow_evidence(cfg.promote):
        shadow = shadow_evidence(name, champion_version, challenger_version, cfg.promote)
    decision = decide(
        name, target, challenger_figures, champion_figures, cfg.promote, force, shadow
    )
    from modelyard.deploy.history import record_move  # deploy imports this module

    moved = decision.outcome in (PASSED, FORCED) and not dry_run
    # The decision's tags, the move and its history, all or none: a Ctrl-C between
    # them left a move with no gate record, or a history that missed it.
    with tracking.ctrl_c_after_write():
        _record(client, decision, challenger_version)
        if moved:
            client.set_registered_model_alias(name, target, challenger_version)
            record_move(client, name, target, champion_version, challenger_version)
    return Promotion(decision, name, target, challenger_version, champion_version, moved, dry_run)
