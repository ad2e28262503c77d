"""Typed configuration composed from the YAML groups shipped in this package."""

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
