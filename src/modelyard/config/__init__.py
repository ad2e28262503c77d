"""Typed configuration composed from the YAML groups shipped in this package.

Owns: the config's shape (schema.py, one place), the shipped YAML groups, Hydra-style
composition and override reading, and config validation.

May import: ``modality`` (each kind validates its own keys); nothing heavier.
"""

from modelyard.config.compose import compose_config, flatten, from_yaml, to_dict, to_yaml
from modelyard.config.schema import (
    Config,
    DataConfig,
    ExportConfig,
    ModelConfig,
    TaskConfig,
    TrackingConfig,
    TrainConfig,
)

__all__ = [
    "Config",
    "DataConfig",
    "ExportConfig",
    "ModelConfig",
    "TaskConfig",
    "TrackingConfig",
    "TrainConfig",
    "compose_config",
    "flatten",
    "from_yaml",
    "to_dict",
    "to_yaml",
]
