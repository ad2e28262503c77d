"""Architectures by name: the table the ``model.name`` config key chooses from."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from modelyard.config.schema import ModelConfig
from modelyard.errors import ConfigError
from modelyard.models.cnn import SmallCNN

ARCHITECTURES: dict[str, Callable[[ModelConfig, tuple[int, int, int], int], nn.Module]] = {
    "cnn": SmallCNN,
}

__all__ = ["ARCHITECTURES", "SmallCNN", "build_model"]


def build_model(cfg: ModelConfig, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    try:
        factory = ARCHITECTURES[cfg.name]
    except KeyError:
        raise ConfigError(
            f"unknown model.name '{cfg.name}'; choose one of {', '.join(ARCHITECTURES)}"
        ) from None
    return factory(cfg, in_shape, num_classes)
