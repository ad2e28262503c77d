"""``deploy()``: move an environment's alias to a version that passed the gate.

Servers started on ``<model>@<alias>`` poll the alias (``poll_interval_s``) and
swap in the new version after loading, warming and smoke-testing it, so moving
the alias is the whole deployment on the model side; replicas and resources are
for the cluster (the Kubernetes manifests read the same spec).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelyard import tracking
from modelyard.deploy.history import record_move
from modelyard.deploy.spec import DeploySpec, load_spec
from modelyard.errors import Refused
from modelyard.promote.gate import FORCED, PASSED
from modelyard.promote.run import gate_tag
from modelyard.registry import resolve_version

DEPLOYABLE = (PASSED, FORCED)


@dataclass(frozen=True)
class Deployment:
    model: str
    env: str
    alias: str
    version: str
    previous: str | None
    moved: bool
    dry_run: bool
    gate: str
    """The gate's outcome for this version and environment: passed or forced."""
    spec: DeploySpec

    @property
    def serve_command(self) -> str:
        settings = " ".join(f"{k}={v}" for k, v in self.spec.serve.items())
        return f"modelyard serve {shlex.quote(f'{self.model}@{self.alias}')} {settings}".strip()

    def to_dict(self) -> dict[str, Any]:
        env = self.spec.environments[self.env]
        return {
            "model": self.model,
            "env": self.env,
            "alias": self.alias,
            "version": self.version,
            "previous": self.previous,
            "moved": self.moved,
            "dry_run": self.dry_run,
            "gate": self.gate,
            "replicas": env.replicas,
            "resources": self.spec.to_dict()["resources"],
            "serve": dict(self.spec.serve),
            "serve_command": self.serve_command,
        }


def _gated_versions(client: MlflowClient, name: str, env: str) -> list[str]:
    versions = client.search_model_versions(f"name='{name}'", max_results=1000)
    gated = [v for v in versions if v.tags.get(gate_tag(env)) in DEPLOYABLE]
    return [str(v.version) for v in sorted(gated, key=lambda v: int(v.version), reverse=True)]


def _check_gate(client: MlflowClient, name: str, version: str, env: str) -> str:
    tags = client.get_model_version(name, version).tags
    outcome = tags.get(gate_tag(env))
    if outcome in DEPLOYABLE:
        return str(outcome)
    if outcome is None:
        raise Refused(
            f"{name} version {version} has not been through the promotion gate for {env}; "
            f"run `modelyard promote {name} --to {env} --version {version}` first"
        )
    reason = tags.get(gate_tag(env, "reason"), "no reason recorded")
    raise Refused(
        f"{name} version {version} was {outcome} by the promotion gate for {env}: {reason}"
    )


def deploy(
    spec_path: str | Path, env: str, version: str | None = None, dry_run: bool = False
) -> Deployment:
    """Validate the spec, check the version passed the gate for ``env``, move the alias.

    Without ``version`` the newest version that passed the gate for ``env`` is
    deployed. The registry is the one the spec's servers poll (``serve.tracking_uri``,
    else ``MLFLOW_TRACKING_URI`` or the embedded store).
    """
    spec = load_spec(spec_path)
    alias = spec.environment(env).alias
    tracking.configure(spec.serve.get("tracking_uri"))
    client = MlflowClient()
    name = spec.model
    if version is None:
        resolve_version(name, None, None)  # a clear error if the model does not exist
        gated = _gated_versions(client, name, env)
        if not gated:
            raise Refused(
                f"no version of {name} has passed the promotion gate for {env}; "
                f"run `modelyard promote {name} --to {env}` first"
            )
        version = gated[0]
    else:
        version = resolve_version(name, None, version)
    outcome = _check_gate(client, name, version, env)
    try:
        previous: str | None = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        previous = None
    moved = previous != version and not dry_run
    if moved:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with tracking.ctrl_c_after_write():  # the move and its records, all or none
            client.set_registered_model_alias(name, alias, version)
            record_move(client, name, alias, previous, version)  # for modelyard rollback
            client.set_model_version_tag(name, version, f"modelyard.deploy.{env}", stamp)
    return Deployment(name, env, alias, version, previous, moved, dry_run, outcome, spec)
