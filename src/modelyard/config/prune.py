"""The checks and the rounding rule of ``train.prune``, torch-free.

They run while the config is validated, so a pruning that cannot work (a layer left
with no channels, a model family that cannot lose channels) fails in one line
before any data is loaded or any epoch is trained. The channel surgery itself is
:mod:`modelyard.models.prune`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.errors import ConfigError

if TYPE_CHECKING:
    from modelyard.config.schema import Config

STRUCTURED_PRUNING_MODELS = ("cnn",)
"""``model.name`` values whose layers can lose whole channels (``train.prune=channels``)."""
MAGNITUDE_PRUNING_MODELS = ("cnn",)
"""``model.name`` values whose weights ``train.prune=magnitude`` zeroes."""


def kept_channels(width: int, amount: float) -> int:
    """Channels a layer of ``width`` keeps when ``amount`` of them are pruned.

    The removed count is rounded to the nearest channel, as ``torch.nn.utils.prune``
    rounds a float amount, so a narrow layer can round down to none left.
    """
    return width - round(amount * width)


def check_prune(cfg: Config) -> None:
    """Raise :class:`ConfigError` for a ``train.prune*`` setting that cannot work."""
    train = cfg.train
    method = str(train.prune)
    if method == "none":
        return
    if not 0.0 <= train.prune_amount < 1.0:
        raise ConfigError(
            f"train.prune_amount must be in [0, 1) (the share of each layer pruned), "
            f"got {train.prune_amount}"
        )
    if train.prune_finetune_epochs < 0:
        raise ConfigError(
            f"train.prune_finetune_epochs must be >= 0, got {train.prune_finetune_epochs}"
        )
    supported = STRUCTURED_PRUNING_MODELS if method == "channels" else MAGNITUDE_PRUNING_MODELS
    if cfg.model.name not in supported:
        raise ConfigError(
            f"train.prune={method} cannot prune model.name={cfg.model.name}; it supports "
            f"model.name={', '.join(supported)} (image CNNs); use train.prune=none"
        )
    if train.refit:
        raise ConfigError("train.prune and train.refit cannot be combined; set one of them off")
    if train.devices * train.num_nodes > 1:
        raise ConfigError(
            "train.prune fine-tunes in one process; set train.devices=1 and train.num_nodes=1"
        )
    if method != "channels":
        return
    for block, width in enumerate(cfg.model.channels):
        left = kept_channels(width, train.prune_amount)
        if left < 1:
            raise ConfigError(
                f"train.prune_amount={train.prune_amount} leaves block {block}'s convolutions "
                f"(model.channels[{block}]={width} channels) with {left} channels; use an "
                f"amount below {(width - 0.5) / width:.3f} or wider layers"
            )
