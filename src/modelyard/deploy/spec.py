"""Deployment specs (``deploy/models/<name>.yaml``): read and validate.

The shape is a contract shared with the Kubernetes ConfigMap and the CI
workflows::

    model: mnist5k-cnn
    environments:
      staging:    {alias: staging,    replicas: 1}
      production: {alias: production, replicas: 2}
    resources: {cpu: "1", memory: 512Mi}
    serve: {max_batch_size: 32, max_delay_ms: 0}

``serve`` takes the settings of :class:`modelyard.serve.settings.ServeSettings`
(checked by the same schema the server uses); ``resources`` are Kubernetes
quantities. Every error names the file, the key and what would be valid.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from modelyard.bundle import ALIAS, MODEL_NAME
from modelyard.errors import ConfigError
from modelyard.serve.settings import ServeSettings, settings_from

ENVIRONMENTS = ("staging", "production")
"""The environments a spec may describe; each is gated by ``modelyard promote --to <env>``."""
_TOP = ("model", "environments", "resources", "serve")
_ENV_KEYS = ("alias", "replicas")
_RESOURCE_KEYS = ("cpu", "memory")
# The spec says which model and alias a server loads; ``model`` is not a serve setting.
SERVE_KEYS = tuple(f.name for f in fields(ServeSettings) if f.name != "model")
_NAME = re.compile(rf"^{MODEL_NAME}$")
_ALIAS = re.compile(rf"^{ALIAS}$")
_CPU = re.compile(r"^\d+(\.\d+)?m?$")
_MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


@dataclass(frozen=True)
class Environment:
    alias: str
    """The registry alias this environment's servers load (``<model>@<alias>``)."""
    replicas: int = 1


@dataclass(frozen=True)
class Resources:
    cpu: str = "1"
    """Kubernetes CPU quantity per replica: "1", "500m"."""
    memory: str = "512Mi"
    """Kubernetes memory quantity per replica: "512Mi", "1Gi"."""


@dataclass(frozen=True)
class DeploySpec:
    source: str
    model: str
    environments: dict[str, Environment]
    resources: Resources = field(default_factory=Resources)
    serve: dict[str, Any] = field(default_factory=dict)

    def environment(self, env: str) -> Environment:
        if env not in self.environments:
            raise ConfigError(
                f"{self.source} has no environment '{env}'; it describes "
                + ", ".join(self.environments)
            )
        return self.environments[env]

    def serve_settings(self, env: str) -> ServeSettings:
        """What a server for ``env`` runs with: the spec's serve keys on the defaults."""
        alias = self.environment(env).alias
        return settings_from([], **{**self.serve, "model": f"{self.model}@{alias}"})

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "environments": {k: asdict(v) for k, v in self.environments.items()},
            "resources": asdict(self.resources),
            "serve": dict(self.serve),
        }


def _mapping(value: Any, where: str, allowed: tuple[str, ...], source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {where} must be a mapping, got {type(value).__name__}")
    unknown = [str(k) for k in value if k not in allowed]
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{unknown[0]}' in {where}; valid: {', '.join(allowed)}"
        )
    return value


def _quantity(value: Any, where: str, pattern: re.Pattern[str], example: str, source: str) -> str:
    text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not pattern.match(text):
        raise ConfigError(
            f"{source}: {where} must be a Kubernetes quantity like {example}, got {value!r}"
        )
    return text


def _environment(name: str, value: Any, source: str) -> Environment:
    where = f"environments.{name}"
    entry = _mapping(value, where, _ENV_KEYS, source)
    alias = entry.get("alias")
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise ConfigError(f"{source}: {where}.alias must be an alias name like staging")
    replicas = entry.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ConfigError(f"{source}: {where}.replicas must be an integer >= 1, got {replicas!r}")
    return Environment(alias, replicas)


def parse_spec(data: Any, source: str = "deploy spec") -> DeploySpec:
    """Validate a parsed spec; ``source`` names it in errors."""
    top = _mapping(data, "the top level", _TOP, source)
    for required in ("model", "environments"):
        if required not in top:
            raise ConfigError(f"{source}: missing '{required}'")
    model = top["model"]
    if not isinstance(model, str) or not _NAME.match(model):
        raise ConfigError(f"{source}: model must be a registered model name, got {model!r}")
    envs = _mapping(top["environments"], "environments", ENVIRONMENTS, source)
    if not envs:
        raise ConfigError(f"{source}: environments is empty; describe staging and/or production")
    resources = _mapping(top.get("resources", {}), "resources", _RESOURCE_KEYS, source)
    defaults = Resources()
    serve = _mapping(top.get("serve") or {}, "serve", SERVE_KEYS, source)
    spec = DeploySpec(
        source=source,
        model=model,
        environments={name: _environment(name, value, source) for name, value in envs.items()},
        resources=Resources(
            cpu=_quantity(
                resources.get("cpu", defaults.cpu), "resources.cpu", _CPU, '"1" or "500m"', source
            ),
            memory=_quantity(
                resources.get("memory", defaults.memory),
                "resources.memory",
                _MEMORY,
                '"512Mi" or "1Gi"',
                source,
            ),
        ),
        serve=dict(serve),
    )
    for env in spec.environments:  # types of the serve settings, as the server checks them
        try:
            spec.serve_settings(env)
        except ConfigError as error:
            raise ConfigError(f"{source}: serve: {error}") from None
    return spec


def load_spec(path: str | Path) -> DeploySpec:
    """Read and validate ``deploy/models/<name>.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"deploy spec {path} does not exist; see deploy/models/ for examples")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    return parse_spec(data, str(path))
