"""Compose the shipped Hydra YAML with command-line overrides into a typed Config."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from modelyard.config.schema import Config, validate
from modelyard.errors import ConfigError

_SCHEMA_NAME = "schema"
ConfigStore.instance().store(name=_SCHEMA_NAME, node=Config)


def _section_fields() -> dict[str, list[str]]:
    return {
        f.name: [g.name for g in dataclasses.fields(f.default_factory())]  # type: ignore[misc]
        for f in dataclasses.fields(Config)
    }


def _explain(error: Exception, overrides: Sequence[str]) -> str:
    """Turn a Hydra/OmegaConf error into one line naming the key and the valid choices."""
    # Hydra wraps the OmegaConf error that names the key and type; read the innermost.
    while error.__cause__ is not None:
        error = error.__cause__  # type: ignore[assignment]
    text = str(error).strip()
    sections = _section_fields()
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if "." not in key:
            continue
        section, _, name = key.partition(".")
        if section not in sections:
            return f"unknown config section '{section}' in '{override}'; valid: " + ", ".join(
                sections
            )
        if name not in sections[section]:
            return f"unknown config key '{key}'; valid keys in '{section}': " + ", ".join(
                sections[section]
            )
    first_line = text.splitlines()[0] if text else type(error).__name__
    if "Could not find" in text or "Could not load" in text:
        lines = [ln.strip() for ln in text.splitlines()[1:] if ln.strip()]
        options = [ln for ln in lines if not ln.startswith(("Config search path", "provider="))]
        return first_line + ("; " + " ".join(options) if options else "")
    full_key = next((ln for ln in text.splitlines() if "full_key" in ln), "")
    return first_line + (f" ({full_key.strip()})" if full_key else "")


def compose_config(overrides: Sequence[str] = ()) -> Config:
    """Compose ``config.yaml`` with Hydra-style ``key=value`` overrides and validate it.

    Raises :class:`ConfigError` naming the bad key, value or group option before any
    work starts.
    """
    for override in overrides:
        if "=" not in override:
            raise ConfigError(
                f"'{override}' is not an override; write key=value (e.g. train.max_epochs=5)"
            )
    try:
        with initialize_config_module(config_module="modelyard.config", version_base=None):
            raw = compose(config_name="config", overrides=list(overrides))
        cfg = OmegaConf.to_object(raw)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        raise ConfigError(_explain(error, overrides)) from error
    assert isinstance(cfg, Config)
    return validate(cfg)


def to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain nested dicts (for YAML, JSON and MLflow params)."""
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def from_yaml(text: str) -> Config:
    """Read back a config written by :func:`to_yaml` (used by ``--resume``)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.create(text))
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise ConfigError(f"stored config is not valid: {error}") from error
    assert isinstance(cfg, Config)
    return validate(cfg)


def flatten(cfg: Config) -> dict[str, str]:
    """``section.key -> value`` strings, the form MLflow params take."""
    flat: dict[str, str] = {}
    for section, values in to_dict(cfg).items():
        for key, value in values.items():
            flat[f"{section}.{key}"] = str(value)
    return flat
