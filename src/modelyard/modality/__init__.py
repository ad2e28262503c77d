"""Input kinds (modalities): one object per kind, chosen once from ``kind``.

The server, evaluation, monitoring and training ask :func:`modality_for` for the
object of a bundle's (or task's) kind and call it; they do not branch on the kind.
A new kind is one module with a :class:`~modelyard.modality.base.Modality` subclass,
plus one line in ``_KINDS`` below. Modules load on first use, so serving an image
model never imports the text kind's code, and a kind's heavy parts (data loaders)
load only when called.

Owns: each kind's spec, request decoding (v1, v2), metadata, warm-up input, log
summaries and reference profile, and dataset loading and splitting.

May import: ``bundle``, ``config``, ``data`` (inside functions: loading a kind's
datasets), ``features``, ``monitor.profile``, ``monitor.summaries`` (numpy only),
``predictor`` (type hints), ``serve.codecs``, ``serve.errors``; never torch, MLflow
or Starlette.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from modelyard.errors import ConfigError
from modelyard.modality.base import Batch, Examples, InputSpec, Modality, TrackedSplit

__all__ = [
    "Batch",
    "Examples",
    "InputSpec",
    "Modality",
    "TrackedSplit",
    "kinds",
    "modality_for",
]

_KINDS: dict[str, str] = {
    "image": "modelyard.modality.image:ImageModality",
    "text": "modelyard.modality.text:TextModality",
    "tabular": "modelyard.modality.tabular:TabularModality",
}
"""kind -> ``module:class`` of its :class:`Modality`: the one place a kind is registered."""

_LOADED: dict[str, Modality[Any]] = {}


def kinds() -> tuple[str, ...]:
    """Every registered kind, in registration order."""
    return tuple(_KINDS)


def modality_for(kind: str) -> Modality[Any]:
    """The :class:`Modality` of ``kind``; :class:`ConfigError` names the known kinds."""
    found = _LOADED.get(kind)
    if found is not None:
        return found
    target = _KINDS.get(kind)
    if target is None:
        raise ConfigError(f"unknown input kind '{kind}'; this modelyard knows {', '.join(_KINDS)}")
    module, _, name = target.partition(":")
    modality: Modality[Any] = getattr(import_module(module), name)()
    _LOADED[kind] = modality
    return modality
