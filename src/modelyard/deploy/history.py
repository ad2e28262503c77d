"""Which versions an alias held, in order, so ``modelyard rollback`` can move it back.

MLflow keeps only an alias's current version. Every move modelyard makes (promote,
deploy, rollback) is recorded on the registered model as a tag,
``modelyard.alias_history.<alias>``: the versions the alias held, oldest first.
Rollback pops the top: a second rollback goes one version further back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from modelyard.errors import Refused

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

HISTORY_TAG = "modelyard.alias_history.{alias}"
ROLLBACK_TAG = "modelyard.rollback.{alias}"
_KEEP = 50  # versions remembered per alias (a tag holds at most 5,000 characters)


def _tag(alias: str) -> str:
    return HISTORY_TAG.format(alias=alias)


def read_history(client: MlflowClient, name: str, alias: str) -> list[str]:
    tags = client.get_registered_model(name).tags
    try:
        history = json.loads(tags.get(_tag(alias), "[]"))
    except json.JSONDecodeError:
        return []
    return [str(v) for v in history] if isinstance(history, list) else []


def _write(client: MlflowClient, name: str, alias: str, history: list[str]) -> None:
    client.set_registered_model_tag(name, _tag(alias), json.dumps(history[-_KEEP:]))


def record_move(
    client: MlflowClient, name: str, alias: str, previous: str | None, version: str
) -> None:
    """Note that ``alias`` moved from ``previous`` (None: unset) to ``version``."""
    history = read_history(client, name, alias)
    if previous is not None and (not history or history[-1] != previous):
        history.append(previous)  # moved outside modelyard, or before history was kept
    if not history or history[-1] != version:
        history.append(version)
    _write(client, name, alias, history)


@dataclass(frozen=True)
class Rollback:
    model: str
    alias: str
    version: str
    """The version the alias holds now (the earlier one)."""
    rolled_back: str
    """The version it held before the rollback."""
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "version": self.version,
            "rolled_back": self.rolled_back,
            "reason": self.reason,
        }


def rollback(client: MlflowClient, name: str, alias: str, current: str, reason: str) -> Rollback:
    """Move ``alias`` from ``current`` to the version it held before; tag why on the
    version left. :class:`Refused` when the history holds no earlier version."""
    history = read_history(client, name, alias)
    if history and history[-1] == current:
        history.pop()
    if not history:
        raise Refused(
            f"{name}@{alias} holds version {current} and modelyard recorded no earlier "
            "version for it; nothing to roll back to (move it with modelyard deploy or promote)"
        )
    from modelyard.tracking import ctrl_c_after_write

    target = history[-1]
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    why = json.dumps({"to": target, "at": stamp, "reason": reason})
    # The move, the history it pops and the reason, all or none: a Ctrl-C between
    # them moved the alias with no record of why, and left the history saying the
    # version just left was current, for the next rollback to pick up.
    with ctrl_c_after_write():
        client.set_registered_model_alias(name, alias, target)
        _write(client, name, alias, history)
        client.set_model_version_tag(name, current, ROLLBACK_TAG.format(alias=alias), why)
    return Rollback(name, alias, target, current, reason)
