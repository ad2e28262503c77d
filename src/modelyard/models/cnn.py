"""A small configurable CNN for images: conv blocks, an embedding layer, a classifier."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from modelyard.config.schema import ModelConfig


class SmallCNN(nn.Module):
    """Blocks of (3x3 conv, batch norm, ReLU) x k then 2x2 max-pool, then an MLP head.

    ``embed`` returns the penultimate activations: the bundle exports them beside the
    probabilities so monitoring can compare what the model "sees" with training.
    """

    def __init__(self, cfg: ModelConfig, in_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        channels, height, width = in_shape
        layers: list[nn.Module] = []
        for out_channels in cfg.channels:
            for _ in range(cfg.convs_per_block):
                layers += [
                    nn.Conv2d(channels, out_channels, 3, padding=1, bias=False),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=True),
                ]
                channels = out_channels
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        self.features = nn.Sequential(*layers)
        self.embedding = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width, cfg.hidden),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.hidden, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return cast("torch.Tensor", self.embedding(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast("torch.Tensor", self.classifier(self.dropout(self.embed(x))))
