"""``data.extra_text_weight``: training texts not from the labelled source weigh less
in the loss (modelyard.train.module, modelyard.train.text_data)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modelyard.config.compose import compose_config
from modelyard.config.schema import TrainConfig
from modelyard.data.dataset import LabelledDataset
from modelyard.data.text import TextSplit
from modelyard.errors import ConfigError
from modelyard.features.text import TextSpec
from modelyard.train.module import Classifier, weighted_cross_entropy
from modelyard.train.refit import all_labelled
from modelyard.train.text_data import TextDataModule


def _batch(n: int = 12, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, classes, generator=generator), torch.arange(n) % classes


@pytest.mark.parametrize("class_weights", [None, torch.tensor([0.5, 2.0, 1.0, 1.5])])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_weight_one_is_the_plain_cross_entropy(
    class_weights: torch.Tensor | None, smoothing: float
) -> None:
    logits, labels = _batch()
    ones = torch.ones(len(labels))
    got = weighted_cross_entropy(logits, labels, ones, class_weights, smoothing)
    want = F.cross_entropy(logits, labels, weight=class_weights, label_smoothing=smoothing)
    assert torch.allclose(got, want, atol=1e-6)


def test_a_smaller_weight_scales_only_those_examples_contributions() -> None:
    logits, labels = _batch()
    extra = torch.zeros(len(labels), dtype=torch.bool)
    extra[::3] = True
    per_example = F.cross_entropy(logits, labels, reduction="none")
    real_part = per_example[~extra].sum() / len(labels)
    extra_part = per_example[extra].sum() / len(labels)
    for w in (1.0, 0.5, 0.25):
        weights = torch.where(extra, w, 1.0)
        leaf = logits.clone().requires_grad_(True)
        loss = weighted_cross_entropy(leaf, labels, weights)
        assert torch.allclose(loss, real_part + w * extra_part, atol=1e-6)
        loss.backward()
        plain = logits.clone().requires_grad_(True)
        F.cross_entropy(plain, labels).backward()
        assert leaf.grad is not None and plain.grad is not None
        # Each extra example's gradient is w times the unweighted one; real ones unchanged.
        assert torch.allclose(leaf.grad[extra], w * plain.grad[extra], atol=1e-7)
        assert torch.allclose(leaf.grad[~extra], plain.grad[~extra], atol=1e-7)


def test_classifier_loss_with_weights_of_one_equals_the_unweighted_batch() -> None:
    torch.manual_seed(0)
    module = Classifier(nn.Linear(6, 3), TrainConfig(label_smoothing=0.1), augment=False)
    x, y = torch.randn(10, 6), torch.arange(10) % 3
    plain = module._step((x, y), "train")
    weighted = module._step((x, y, torch.ones(10)), "train")
    assert torch.allclose(plain, weighted, atol=1e-6)
    halved = module._step((x, y, torch.full((10,), 0.5)), "train")
    assert torch.allclose(halved, plain * 0.5, atol=1e-6)
    module.train_loss = lambda x, logits, y: logits.sum()  # as distill sets it
    with pytest.raises(ConfigError, match="extra_text_weight"):
        module._step((x, y, torch.ones(10)), "train")


def _dataset() -> LabelledDataset[TextSplit]:
    def split(texts: list[str], extra: list[bool] | None) -> TextSplit:
        n = len(texts)
        # An added text without a weight of its own is NaN: it takes extra_weight.
        weight = None if extra is None else np.where(extra, np.nan, 1.0).astype(np.float32)
        return TextSplit(
            np.array(texts, dtype=object),
            np.arange(n) % 2,
            np.array(["g"] * n, dtype=object),
            weight,
        )

    return LabelledDataset(
        name="t",
        uri="t",
        class_names=("a", "b"),
        fingerprint="f",
        train=split(["ett", "två", "tre", "fire"], [False, False, True, True]),
        val=split(["fem", "seks"], None),
        test=split(["sju", "otte"], None),
    )


def test_data_module_weighs_extra_training_texts_only() -> None:
    dataset = _dataset()
    unweighted = TextDataModule(dataset, TextSpec(), batch_size=8, num_workers=0)
    assert len(next(iter(unweighted.train_dataloader()))) == 2  # today's batches
    module = TextDataModule(dataset, TextSpec(), batch_size=8, num_workers=0, extra_weight=0.3)
    assert len(next(iter(module.train_dataloader()))) == 3
    _, _, weights = module.train_dataloader().collate_fn([3, 0, 2, 1])
    assert weights.tolist() == pytest.approx([0.3, 1.0, 0.3, 1.0])  # texts 2 and 3 are extra
    assert len(next(iter(module.val_dataloader()))) == 2  # evaluation is never weighted


def test_refit_keeps_the_extra_marks() -> None:
    merged = all_labelled(_dataset()).train
    assert merged.extra_mask.tolist() == [False, False, True, True, False, False, False, False]
    assert merged.take(np.array([2, 4])).extra_mask.tolist() == [True, False]


@pytest.mark.parametrize("value", ["0", "-0.5", "1.5"])
def test_weight_outside_zero_to_one_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"data.extra_text_weight must be in \(0, 1\]"):
        compose_config([f"data.extra_text_weight={value}"], paths=False)
    assert compose_config(["data.extra_text_weight=0.5"], paths=False).data.extra_text_weight == 0.5


def test_distilling_with_down_weighted_text_is_refused_before_training() -> None:
    overrides = ["distill.teacher=digits-cnn@production", "data.extra_text_weight=0.5"]
    with pytest.raises(ConfigError, match="cannot be used with modelyard distill"):
        compose_config(overrides, paths=False)
