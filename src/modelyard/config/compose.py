"""Compose the shipped Hydra YAML with command-line overrides into a typed Config.

A project can keep its own config folder (``modelyard init`` writes one): when the
working directory has ``config/config.yaml``, or ``MODELYARD_CONFIG_DIR`` names a
folder, that folder is Hydra's primary config and the package's YAML comes after
it on the search path. A project file therefore replaces the package's file of
the same group and name (``config/train/default.yaml``), and every shipped group
option (``task=digits``) stays available.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_origin, get_type_hints

from hydra import compose, initialize_config_dir, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

from modelyard.choices import Choice, invalid_choice
from modelyard.config.overrides import override_key
from modelyard.config.schema import PATH_KEYS, Config, check_paths, expand_paths, validate
from modelyard.errors import ConfigError

CONFIG_DIR_ENV = "MODELYARD_CONFIG_DIR"
PROJECT_CONFIG_DIR = Path("config")
_PACKAGE_SEARCH_PATH = "pkg://modelyard.config"
_SCHEMA_NAME = "schema"
ConfigStore.instance().store(name=_SCHEMA_NAME, node=Config)
_PARSER = OverridesParser.create()


def _section_fields() -> dict[str, list[str]]:
    """Each section of :class:`Config` with its keys, in declaration order."""
    return {
        section: [f.name for f in dataclasses.fields(cls)]
        for section, cls in get_type_hints(Config).items()
    }


def _mapping_fields() -> set[str]:
    """``section.key`` of the fields that are mappings (``data.files``, ``tune.space``)."""
    return {
        f"{section}.{name}"
        for section, cls in get_type_hints(Config).items()
        for name, hint in get_type_hints(cls).items()
        if get_origin(hint) is dict
    }


def _choice_field(full_key: object) -> type[Choice] | None:
    """The :class:`Choice` a ``section.key`` of :class:`Config` is typed with, or None."""
    if not isinstance(full_key, str) or full_key.count(".") != 1:
        return None
    section, name = full_key.split(".")
    cls = get_type_hints(Config).get(section)
    hint = get_type_hints(cls).get(name) if dataclasses.is_dataclass(cls) else None
    return hint if isinstance(hint, type) and issubclass(hint, Choice) else None


def project_config_dir() -> Path | None:
    """The project's own config folder, searched before the package's, or None.

    ``MODELYARD_CONFIG_DIR`` when set (it must hold ``config.yaml``); otherwise
    ``./config`` when it holds ``config.yaml``. A ``config/`` folder without one is
    some other tool's and is left alone.
    """
    named = os.environ.get(CONFIG_DIR_ENV)
    if named:
        folder = Path(named).expanduser()
        if not (folder / "config.yaml").is_file():
            raise ConfigError(
                f"{CONFIG_DIR_ENV}={named} has no config.yaml; point it at a project's "
                "config folder (modelyard init writes one) or unset it"
            )
        return folder.resolve()
    if (PROJECT_CONFIG_DIR / "config.yaml").is_file():
        return PROJECT_CONFIG_DIR.resolve()
    return None


def _groups() -> list[str]:
    """The config groups (``task=...``, ``model=...``): the YAML folders of this package
    and of the project's config folder."""
    roots = [Path(__file__).parent]
    project = project_config_dir()
    if project is not None:
        roots.append(project)
    return sorted(
        {p.name for root in roots for p in root.iterdir() if p.is_dir() and any(p.glob("*.yaml"))}
    )


def _unknown_key(key: str, override: str) -> str | None:
    """The one-line complaint about ``key`` when the schema has no such key, else None."""
    sections = _section_fields()
    section, _, name = key.partition(".")
    if not name and (section in sections or section in _groups()):
        return None  # a group (task=digits) or a whole section
    if not name or section not in sections:
        return f"unknown config section '{section}' in '{override}'; valid: " + ", ".join(sections)
    field, _, below = name.partition(".")
    if field not in sections[section] or (below and f"{section}.{field}" not in _mapping_fields()):
        return f"unknown config key '{key}'; valid keys in '{section}': " + ", ".join(
            sections[section]
        )
    return None


def _quoting_hint(key: str, value: str) -> str:
    """How to quote a value Hydra's grammar cannot read bare, for Hydra and the shell."""
    shown = value if '"' not in value and "'" not in value else "..."
    return f"quote the value: '{key}=\"{shown}\"' (single quotes for the shell, double for Hydra)"


def _prepare(override: str) -> str:
    """Check one ``key=value`` override and rewrite it into the form Hydra should read.

    * A leading ``~`` in a path value is expanded (``data.path=~/pets``): Hydra's
      grammar has no ``~`` in values, and the shell does not expand it after ``=``.
    * ``+key=value`` is Hydra's "add a new key". Every key of the schema already
      exists, so ``+`` on one means the plain override; on a key the schema lacks,
      Hydra would add it and ``OmegaConf.to_object`` drop it without a word, so it is
      refused. Keys below a mapping field (``+data.files.x=da``) keep their ``+``.
    * A value the grammar rejects is reported with the override and how to quote it.
    """
    if "=" not in override:
        raise ConfigError(
            f"'{override}' is not an override; write key=value (e.g. train.max_epochs=5)"
        )
    key, value = override.split("=", 1)
    bare = key.lstrip("+")
    if bare != key:
        problem = _unknown_key(bare, override)
        if problem:
            raise ConfigError(problem)
        if bare.count(".") <= 1:
            key = bare
    if bare in PATH_KEYS and value.startswith("~"):
        value = os.path.expanduser(value)
    prepared = f"{key}={value}"
    try:
        parsed = _PARSER.parse_override(prepared)
    except HydraException as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise ConfigError(
            f"cannot read '{override}' ({reason}); {_quoting_hint(bare, value)}"
        ) from None
    if parsed.is_sweep_override():
        raise ConfigError(
            f"'{override}' has a comma, which Hydra reads as several values; for a list "
            f"write {bare}=[a,b], for one value {_quoting_hint(bare, value)}"
        )
    return prepared


def _explain(error: Exception, overrides: Sequence[str]) -> str:
    """Turn a Hydra/OmegaConf error into one line naming the key and the valid choices."""
    # Hydra wraps the OmegaConf error that names the key and type; read the innermost.
    while error.__cause__ is not None:
        error = error.__cause__  # type: ignore[assignment]  # the cause is a BaseException; every Hydra cause is an Exception
    text = str(error).strip()
    for override in overrides:
        key = override.split("=", 1)[0]  # with its prefix: "+" matters below
        problem = _unknown_key(override_key(override), override)
        if problem:
            return problem
        if key.count(".") > 1 and not key.startswith("+"):
            mapping = ".".join(key.split(".")[:2])
            return f"'{key}' adds a key to the mapping {mapping}: write +{override}"
    choice = _choice_field(getattr(error, "full_key", None))
    if choice is not None and isinstance(error, ValidationError):
        return invalid_choice(str(error.full_key), error.value, choice.values())
    first_line = text.splitlines()[0] if text else type(error).__name__
    if "Could not find" in text or "Could not load" in text:
        lines = [ln.strip() for ln in text.splitlines()[1:] if ln.strip()]
        options = [ln for ln in lines if not ln.startswith(("Config search path", "provider="))]
        return first_line + ("; " + " ".join(options) if options else "")
    full_key = next((ln for ln in text.splitlines() if "full_key" in ln), "")
    return first_line + (f" ({full_key.strip()})" if full_key else "")


def compose_config(
    overrides: Sequence[str] = (), *, paths: bool = True, validated: bool = True
) -> Config:
    """Compose ``config.yaml`` with Hydra-style ``key=value`` overrides and validate it.

    Raises :class:`ConfigError` naming the bad key, value or group option before any
    work starts. With ``paths`` (the default) ``data.path`` must also exist, so a
    mistyped path fails here rather than after the training stack has loaded.
    ``validated=False`` skips both checks, for a caller that fills in more values
    first (a bundle's recorded data settings) and validates after.
    """
    prepared = [_prepare(override) for override in overrides]
    project = project_config_dir()
    try:
        if project is None:
            with initialize_config_module(config_module="modelyard.config", version_base=None):
                raw = compose(config_name="config", overrides=prepared)
        else:
            with initialize_config_dir(config_dir=str(project), version_base=None):
                searchpath = f"hydra.searchpath=[{_PACKAGE_SEARCH_PATH}]"
                raw = compose(config_name="config", overrides=[searchpath, *prepared])
        cfg = OmegaConf.to_object(raw)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        raise ConfigError(_explain(error, overrides)) from error
    assert isinstance(cfg, Config)
    if not validated:
        return expand_paths(cfg)
    cfg = validate(expand_paths(cfg))
    return check_paths(cfg) if paths else cfg


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
