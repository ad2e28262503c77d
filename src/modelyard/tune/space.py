"""The search space declared in ``tune.space``: parse it, check it, sample from it.

Each entry maps a config key (``train.lr``) to an Optuna distribution. A sampled
value becomes a Hydra override (``train.lr=0.0031``), so every trial's config goes
through the same typed schema as ``modelyard train``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from modelyard.config.schema import Config
from modelyard.errors import ConfigError

if TYPE_CHECKING:
    import optuna

KINDS = ("float", "int", "categorical")
_ALLOWED_KEYS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}
# Tuning these would change what is searched, where it is logged or the search itself.
_NOT_TUNABLE = ("task", "tracking", "tune", "promote")


@dataclass(frozen=True)
class Param:
    """One searched config key and its distribution."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        """Ask the trial for a value of this parameter (the Python value, not text)."""
        if self.kind in ("float", "int"):
            if self.low is None or self.high is None:
                raise ConfigError(f"tune.space: {self.key} ({self.kind}) needs low and high")
            if self.kind == "float":
                return trial.suggest_float(
                    self.key, float(self.low), float(self.high), log=self.log, step=self.step
                )
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        # Optuna stores categorical choices as JSON scalars; lists (model.channels)
        # are offered as their JSON text and decoded after sampling.
        encoded = [_encode(c) for c in self.choices]
        return _decode(trial.suggest_categorical(self.key, encoded))


def _encode(choice: Any) -> Any:
    return json.dumps(choice) if isinstance(choice, list | dict) else choice


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def override(key: str, value: Any) -> str:
    """A sampled value as a Hydra override (``model.channels=[16,32]``)."""
    if isinstance(value, list):
        return f"{key}=[{','.join(str(v) for v in value)}]"
    if isinstance(value, float):
        return f"{key}={value!r}"
    if value is None:
        return f"{key}=null"
    return f"{key}={value}"


def _tunable_keys() -> dict[str, list[str]]:
    defaults = Config()
    sections = {f.name: getattr(defaults, f.name) for f in fields(Config)}
    return {
        name: [f.name for f in fields(section)]
        for name, section in sections.items()
        if name not in _NOT_TUNABLE
    }


def _number(key: str, spec: Mapping[str, Any], name: str) -> float:
    value = spec.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"tune.space.{key}.{name} must be a number, got {value!r}")
    return value


def parse_param(key: str, spec: Any) -> Param:
    """Check one ``tune.space`` entry and turn it into a :class:`Param`."""
    keys = _tunable_keys()
    section, _, name = key.partition(".")
    if section not in keys:
        raise ConfigError(
            f"tune.space key '{key}' names no tunable config section; use one of "
            + ", ".join(f"{s}.<key>" for s in keys)
        )
    if name not in keys[section]:
        raise ConfigError(
            f"tune.space key '{key}' is not a config key; valid keys in '{section}': "
            + ", ".join(keys[section])
        )
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"tune.space.{key} must be a mapping like {{type: float, low: 0.1, high: 1.0}}"
        )
    kind = spec.get("type")
    if kind not in KINDS:
        raise ConfigError(f"tune.space.{key}.type must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(spec) - _ALLOWED_KEYS[kind])
    if unknown:
        raise ConfigError(
            f"tune.space.{key} has unknown keys {', '.join(unknown)}; a {kind} takes "
            + ", ".join(sorted(_ALLOWED_KEYS[kind]))
        )
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list | tuple) or not choices:
            raise ConfigError(f"tune.space.{key}.choices must be a non-empty list")
        return Param(key, kind, choices=tuple(choices))
    low, high = _number(key, spec, "low"), _number(key, spec, "high")
    log, step = bool(spec.get("log", False)), spec.get("step")
    if not low < high:
        raise ConfigError(f"tune.space.{key} needs low < high, got low={low} high={high}")
    if log and low <= 0:
        raise ConfigError(f"tune.space.{key} has log: true, so low must be positive")
    if step is not None and (log or _number(key, spec, "step") <= 0):
        raise ConfigError(f"tune.space.{key}.step must be positive and cannot go with log: true")
    if kind == "int" and not all(float(v).is_integer() for v in (low, high, step or 1)):
        raise ConfigError(f"tune.space.{key} is an int range; low, high and step must be integers")
    return Param(key, kind, low=low, high=high, log=log, step=step)


def parse_space(space: Mapping[str, Any]) -> list[Param]:
    """Every entry of ``tune.space`` checked; an empty space is an error."""
    if not space:
        raise ConfigError(
            "tune.space is empty; declare what to search, e.g. "
            "tune.space: {train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}"
        )
    return [parse_param(key, spec) for key, spec in space.items()]


def corners(params: list[Param]) -> list[list[str]]:
    """Overrides with every parameter at each end of its range (or at each choice):
    composing them proves every value type-checks before any trial trains."""
    probes: list[list[str]] = []
    for param in params:
        values = list(param.choices) if param.kind == "categorical" else [param.low, param.high]
        if param.kind == "int":
            values = [int(v) for v in values]  # type: ignore[arg-type]  # int bounds are validated numbers when the space is parsed
        probes.extend([override(param.key, v)] for v in values)
    return probes
