"""Channel surgery on a SmallCNN: exact when the removed channels are dead, and the
exported graph shrinks to what a network built that narrow costs."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from modelyard.config.schema import ModelConfig
from modelyard.errors import ConfigError
from modelyard.models.cnn import SmallCNN
from modelyard.models.prune import (
    make_permanent,
    prune_channels,
    prune_magnitude,
    remove_channels,
)
from modelyard.train.prune import graph_cost

SHAPE = (1, 8, 8)


def _net(channels: list[int], convs_per_block: int = 1) -> SmallCNN:
    cfg = ModelConfig(channels=channels, convs_per_block=convs_per_block, hidden=24, dropout=0.0)
    torch.manual_seed(0)
    net = SmallCNN(cfg, SHAPE, 10)
    for module in net.modules():  # trained-looking batch norms, not the identity
        if isinstance(module, nn.BatchNorm2d):
            assert module.running_mean is not None and module.running_var is not None
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _kill(net: SmallCNN, index: int, dead: list[int]) -> None:
    """Make conv ``features.<index>``'s channels ``dead`` output exact zeros: zero filter,
    and a batch norm that maps zero to zero."""
    conv, norm = net.features[index], net.features[index + 1]
    assert isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
    assert norm.running_mean is not None
    with torch.no_grad():
        conv.weight[dead] = 0.0
        norm.bias[dead] = 0.0
        norm.running_mean[dead] = 0.0


def test_removing_dead_channels_keeps_the_function_exactly() -> None:
    net = _net([16, 32, 8], convs_per_block=2)  # convs at features.0, 3, 7, 10, 14, 17
    dead = {0: [1, 4, 9], 3: [0, 2], 7: [5, 6, 7, 30], 10: [3], 14: [0, 1, 2, 3], 17: [7]}
    for index, channels in dead.items():
        _kill(net, index, channels)
    x = torch.randn(64, *SHAPE)
    with torch.no_grad():
        expected, expected_embedding = net(x), net.embed(x)
    widths = {0: 16, 3: 16, 7: 32, 10: 32, 14: 8, 17: 8}
    keep = {
        f"features.{i}": torch.tensor([c for c in range(widths[i]) if c not in dead[i]])
        for i in widths
    }
    record = remove_channels(net, keep)
    assert isinstance(net, SmallCNN)
    assert [(r.layer, r.before, r.after) for r in record] == [
        ("features.0", 16, 13),
        ("features.3", 16, 14),
        ("features.7", 32, 28),
        ("features.10", 32, 31),
        ("features.14", 8, 4),
        ("features.17", 8, 7),
        ("embedding.1", 8 * 1 * 1, 7 * 1 * 1),  # 8x8 input, three 2x2 pools: 1x1 left
    ]
    with torch.no_grad():
        assert torch.allclose(net(x), expected, atol=1e-5)
        assert torch.allclose(net.embed(x), expected_embedding, atol=1e-5)


def test_pruning_picks_the_dead_channels_first() -> None:
    net = _net([16, 32])
    _kill(net, 0, list(range(0, 16, 2)))  # half of the first layer
    _kill(net, 4, list(range(16)))  # half of the second (features.4 after conv, bn, relu, pool)
    x = torch.randn(32, *SHAPE)
    with torch.no_grad():
        expected = net(x)
    prune_channels(net, 0.5)
    first, second = net.features[0], net.features[4]
    assert isinstance(first, nn.Conv2d) and isinstance(second, nn.Conv2d)
    assert (first.out_channels, second.in_channels, second.out_channels) == (8, 8, 16)
    with torch.no_grad():  # only dead channels went, so nothing changed
        assert torch.allclose(net(x), expected, atol=1e-5)


def test_exported_graph_costs_what_the_narrower_network_costs() -> None:
    wide = _net([16, 32])
    macs_before, params_before = graph_cost(wide, SHAPE, 17)
    prune_channels(wide, 0.5)
    macs_after, params_after = graph_cost(wide, SHAPE, 17)
    assert (macs_after, params_after) == graph_cost(_net([8, 16]), SHAPE, 17)
    # Per example: conv 1->16 and 16->32 (3x3) at 8x8 then 4x4, the flattened 32x2x2
    # into 24, then 24 -> 10; halving both conv widths gives 8 and 16.
    assert macs_before == 16 * 64 * 9 + 32 * 16 * 16 * 9 + 128 * 24 + 24 * 10
    assert macs_after == 8 * 64 * 9 + 16 * 16 * 8 * 9 + 64 * 24 + 24 * 10
    assert params_after < params_before / 2.5


def test_a_layer_pruned_to_nothing_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=re.escape("features.0's 16 channels leaves none")):
        prune_channels(_net([16, 32]), 0.97)


def test_magnitude_pruning_zeroes_weights_but_keeps_the_graph() -> None:
    net = _net([16, 32])
    macs_before, params_before = graph_cost(net, SHAPE, 17)
    record = prune_magnitude(net, 0.75)
    for layer in record:
        assert layer.after == layer.before - round(0.75 * layer.before), layer.layer
    make_permanent(net)
    names = {name for name, _ in net.named_parameters()}
    assert not any(name.endswith("_orig") for name in names)  # plain weights again
    conv = net.features[0]
    assert isinstance(conv, nn.Conv2d)
    assert float((conv.weight == 0).float().mean()) == pytest.approx(0.75, abs=0.01)
    assert graph_cost(net, SHAPE, 17) == (macs_before, params_before)
