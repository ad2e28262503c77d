"""Architectures by name: the table the ``model.name`` config key chooses from.

Owns: the nn.Modules and the name -> architecture tables (torch lives here).

May import: ``config``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from modelyard.config.schema import ModelConfig
from modelyard.errors import ConfigError
from modelyard.models.cnn import SmallCNN
from modelyard.models.fasttext import FastText

ARCHITECTURES: dict[str, Callable[[ModelConfig, tuple[int, int, int], int], nn.Module]] = {
    "cnn": SmallCNN,
}
TEXT_ARCHITECTURES: dict[str, Callable[[ModelConfig, int, int], nn.Module]] = {
    "fasttext": FastText,
}
"""Text models take (config, vocabulary size incl. the padding id, number of classes)."""

__all__ = [
    "ARCHITECTURES",
    "TEXT_ARCHITECTURES",
    "FastText",
    "SmallCNN",
    "build_model",
    "build_text_model",
]


def build_model(cfg: ModelConfig, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    try:
        factory = ARCHITECTURES[cfg.name]
    except KeyError:
        raise ConfigError(
            f"unknown model.name '{cfg.name}'; choose one of {', '.join(ARCHITECTURES)}"
        ) from None
    return factory(cfg, in_shape, num_classes)


def build_text_model(cfg: ModelConfig, vocab_size: int, num_classes: int) -> nn.Module:
    try:
        factory = TEXT_ARCHITECTURES[cfg.name]
    except KeyError:
        raise ConfigError(
            f"unknown text model.name '{cfg.name}'; choose one of {', '.join(TEXT_ARCHITECTURES)}"
        ) from None
    return factory(cfg, vocab_size, num_classes)
