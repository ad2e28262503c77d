"""Errors a user can cause. The CLI prints them as one line, without a traceback."""

from __future__ import annotations


class ModelyardError(Exception):
    """Something the user can fix: the message says what was wrong and what to do."""


class ConfigError(ModelyardError):
    """The composed configuration is invalid (unknown key, wrong type, bad choice)."""


class DataError(ModelyardError):
    """A data source is missing, unreadable, corrupt or empty."""


class RegistryError(ModelyardError):
    """A model name, version or alias does not exist in the registry."""


class ExportError(ModelyardError):
    """The exported ONNX graph does not reproduce the trained model."""
