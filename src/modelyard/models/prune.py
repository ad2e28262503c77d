"""Pruning a fitted :class:`~modelyard.models.cnn.SmallCNN`.

Structured (:func:`prune_channels`): whole convolution channels are removed and the
layers rebuilt smaller: the Conv2d's filters, its BatchNorm's statistics, the next
Conv2d's input channels and, after the last block, the columns of the first Linear
that read the flattened channels. The result is still a ``SmallCNN`` (same
``forward``/``embed``), so export and serving need no change, and the exported
ONNX graph has fewer channels and fewer multiply-adds.

A channel's importance is the L1 norm of its filter scaled by its BatchNorm's
``|gamma| / sqrt(var + eps)``: the norm of the filter BatchNorm folds into at
inference, so a filter the BatchNorm scales towards zero counts as small.

Unstructured (:func:`prune_magnitude`): ``torch.nn.utils.prune`` masks the smallest
weights of each conv and linear layer; :func:`make_permanent` folds the masks into
the weights before export. The tensors stay dense: ONNX Runtime on CPU multiplies
the zeros like any other value, so the graph is no faster.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from modelyard.config.prune import kept_channels
from modelyard.errors import ConfigError
from modelyard.models.cnn import SmallCNN


@dataclass(frozen=True)
class LayerPruning:
    """What pruning did to one layer."""

    layer: str
    """The module's name in the model (``features.0``)."""
    before: int
    """Channels (structured) or non-zero weights (magnitude) before."""
    after: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d, nn.BatchNorm2d]]:
    """The (name, conv, batch norm) pairs of a SmallCNN's feature extractor, in order."""
    if not isinstance(model, SmallCNN):
        raise ConfigError(
            f"channel pruning needs a SmallCNN (model.name=cnn), got {type(model).__name__}"
        )
    modules = list(model.features.named_children())
    pairs = []
    for i, (name, module) in enumerate(modules):
        if isinstance(module, nn.Conv2d):
            norm = modules[i + 1][1]
            assert isinstance(norm, nn.BatchNorm2d)
            pairs.append((f"features.{name}", module, norm))
    return pairs


def channel_importance(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> torch.Tensor:
    """L1 norm of each output channel's filter as BatchNorm scales it at inference."""
    assert norm.running_var is not None  # BatchNorm2d tracks running stats by default
    scale = norm.weight.detach().abs() / torch.sqrt(norm.running_var + norm.eps)
    return conv.weight.detach().abs().sum(dim=(1, 2, 3)) * scale


def _keep_indices(conv: nn.Conv2d, norm: nn.BatchNorm2d, amount: float, name: str) -> torch.Tensor:
    width = conv.out_channels
    keep = kept_channels(width, amount)
    if keep < 1:
        raise ConfigError(
            f"pruning {amount} of {name}'s {width} channels leaves none; use a smaller amount"
        )
    order = torch.argsort(channel_importance(conv, norm), descending=True, stable=True)
    return torch.sort(order[:keep]).values  # the kept channels in their original order


def _slim_conv(conv: nn.Conv2d, out_idx: torch.Tensor, in_idx: torch.Tensor) -> nn.Conv2d:
    weight = conv.weight.detach()[out_idx][:, in_idx]
    slim = nn.Conv2d(
        len(in_idx),
        len(out_idx),
        cast("tuple[int, int]", conv.kernel_size),  # Conv2d stores 2-tuples
        stride=cast("tuple[int, int]", conv.stride),
        padding=cast("tuple[int, int]", conv.padding),
        bias=conv.bias is not None,
        device=conv.weight.device,
    )
    slim.weight.data.copy_(weight)
    if conv.bias is not None and slim.bias is not None:
        slim.bias.data.copy_(conv.bias.detach()[out_idx])
    return slim


def _slim_norm(norm: nn.BatchNorm2d, idx: torch.Tensor) -> nn.BatchNorm2d:
    slim = nn.BatchNorm2d(len(idx), eps=norm.eps, momentum=norm.momentum, device=idx.device)
    slim.weight.data.copy_(norm.weight.detach()[idx])
    slim.bias.data.copy_(norm.bias.detach()[idx])
    assert norm.running_mean is not None and norm.running_var is not None
    assert slim.running_mean is not None and slim.running_var is not None
    slim.running_mean.copy_(norm.running_mean[idx])
    slim.running_var.copy_(norm.running_var[idx])
    if norm.num_batches_tracked is not None and slim.num_batches_tracked is not None:
        slim.num_batches_tracked.copy_(norm.num_batches_tracked)
    return slim.train(norm.training)  # an eval model's batch norm stays on running stats


def remove_channels(model: SmallCNN, keep: dict[str, torch.Tensor]) -> list[LayerPruning]:
    """Rebuild ``model`` in place keeping, for each conv named in ``keep``, the output
    channels listed there (every conv must be named). Exact: the kept channels compute
    what they did, so when the removed channels output zeros, so does the model."""
    layers = _conv_layers(model)
    record: list[LayerPruning] = []
    in_idx = torch.arange(layers[0][1].in_channels, device=layers[0][1].weight.device)
    for name, conv, norm in layers:
        out_idx = keep[name]
        index = name.split(".")[1]
        norm_index = str(int(index) + 1)
        model.features._modules[index] = _slim_conv(conv, out_idx, in_idx)
        model.features._modules[norm_index] = _slim_norm(norm, out_idx)
        record.append(LayerPruning(name, conv.out_channels, len(out_idx)))
        in_idx = out_idx
    # The first Linear reads the last block's channels flattened channel-major: each
    # channel is a run of height x width inputs.
    linear = model.embedding[1]
    assert isinstance(linear, nn.Linear)
    last_width = layers[-1][1].out_channels
    per_channel = linear.in_features // last_width
    columns = (
        in_idx[:, None] * per_channel + torch.arange(per_channel, device=in_idx.device)[None, :]
    ).reshape(-1)
    slim = nn.Linear(
        len(columns),
        linear.out_features,
        bias=linear.bias is not None,
        device=linear.weight.device,
    )
    slim.weight.data.copy_(linear.weight.detach()[:, columns])
    if linear.bias is not None and slim.bias is not None:
        slim.bias.data.copy_(linear.bias.detach())
    model.embedding[1] = slim
    record.append(LayerPruning("embedding.1", linear.in_features, len(columns)))
    return record


def prune_channels(model: nn.Module, amount: float) -> list[LayerPruning]:
    """Remove ``amount`` of every conv layer's channels (the least important, by
    :func:`channel_importance`) from a SmallCNN, in place; returns what each layer lost.
    The last entry is the first Linear, whose input features shrink with them."""
    layers = _conv_layers(model)
    assert isinstance(model, SmallCNN)
    keep = {name: _keep_indices(conv, norm, amount, name) for name, conv, norm in layers}
    return remove_channels(model, keep)


def _prunable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def prune_magnitude(model: nn.Module, amount: float) -> list[LayerPruning]:
    """Mask the ``amount`` smallest-magnitude weights of each conv and linear layer
    (``torch.nn.utils.prune.l1_unstructured``). The masks stay on, so fine-tuning
    keeps the zeros; call :func:`make_permanent` before export."""
    record = []
    for name, module in _prunable(model):
        weight = getattr(module, "weight")  # noqa: B009  # Conv2d | Linear both have it
        before = int(torch.count_nonzero(weight))
        # torch.nn.utils.prune has no annotations.
        torch_prune.l1_unstructured(module, "weight", amount=amount)  # type: ignore[no-untyped-call]
        after = int(torch.count_nonzero(getattr(module, "weight")))  # noqa: B009  # masked now
        record.append(LayerPruning(name, before, after))
    return record


def make_permanent(model: nn.Module) -> None:
    """Fold pruning masks into plain weights (``torch.nn.utils.prune.remove``), so the
    model exports as ordinary dense layers."""
    for _, module in _prunable(model):
        if torch_prune.is_pruned(module):
            torch_prune.remove(module, "weight")  # type: ignore[no-untyped-call]  # unannotated in torch


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
