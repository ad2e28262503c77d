from __future__ import annotations

import torch

from modelyard.config import ModelConfig
from modelyard.models import build_model


def test_shapes_and_embedding() -> None:
    cfg = ModelConfig(channels=[4, 8], convs_per_block=2, hidden=16)
    model = build_model(cfg, (3, 20, 20), num_classes=5).eval()
    x = torch.randn(7, 3, 20, 20)
    assert model(x).shape == (7, 5)
    assert model.embed(x).shape == (7, 16)
    assert torch.allclose(model.classifier(model.embed(x)), model(x))
