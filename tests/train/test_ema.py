"""train.ema: validation, checkpoints and the exported model use the averaged weights."""

from __future__ import annotations

import pytest
import torch

from modelyard.config import compose_config
from modelyard.config.schema import TrainConfig
from modelyard.errors import ConfigError
from modelyard.train.module import Classifier


def _weight(module: Classifier) -> torch.Tensor:
    return module.model[0].weight.detach().clone()  # type: ignore[index]  # a Sequential


def test_validation_sees_the_average_and_training_resumes_from_its_own_weights() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    module = Classifier(model, TrainConfig(ema=0.75, augment=False))
    start = _weight(module)
    module.on_train_batch_end(None, None, 0)  # the first step starts the average
    with torch.no_grad():
        model[0].weight.add_(4.0)  # a training step moved the weights by 4
    module.on_train_batch_end(None, None, 1)
    module.on_validation_epoch_start()
    # 0.75 * start + 0.25 * (start + 4)
    torch.testing.assert_close(_weight(module), start + 1.0)
    module.on_validation_epoch_start()  # a second validation does not swap back
    torch.testing.assert_close(_weight(module), start + 1.0)
    module.on_train_epoch_start()
    torch.testing.assert_close(_weight(module), start + 4.0)
    module.on_train_batch_end(None, None, 2)
    module.on_validation_epoch_start()
    # 0.75 * (start + 1) + 0.25 * (start + 4)
    torch.testing.assert_close(_weight(module), start + 1.75)


def test_ema_off_leaves_the_weights_alone() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    module = Classifier(model, TrainConfig(augment=False))
    before = _weight(module)
    module.on_train_batch_end(None, None, 0)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    module.on_train_batch_end(None, None, 1)
    module.on_validation_epoch_start()
    torch.testing.assert_close(_weight(module), before + 1.0)


@pytest.mark.parametrize("decay", ["1.0", "-0.1"])
def test_an_ema_decay_outside_0_1_is_refused_in_one_line(decay: str) -> None:
    with pytest.raises(ConfigError) as error:
        compose_config(["task=digits", f"train.ema={decay}"])
    assert str(error.value).startswith("train.ema must be within [0, 1)")
    assert "\n" not in str(error.value)
