"""``data.extra_text_weights``: a loss weight per added text source, overriding
``data.extra_text_weight`` for that source (modelyard.data.text, modelyard.train)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.text_fixtures import write_ud_fixture
from torch import nn

from modelyard.config import compose_config
from modelyard.config.schema import TrainConfig
from modelyard.data import load_text_dataset, wordlists
from modelyard.data.dataset import LabelledDataset
from modelyard.data.hunspell import Forms
from modelyard.data.text import TextSplit, with_extra_training
from modelyard.errors import ConfigError
from modelyard.features.text import TextSpec
from modelyard.train.module import Classifier, weighted_cross_entropy
from modelyard.train.refit import all_labelled
from modelyard.train.text_data import TextDataModule


def _split(texts: list[str]) -> TextSplit:
    n = len(texts)
    return TextSplit(
        np.array(texts, dtype=object), np.arange(n) % 2, np.array(["g"] * n, dtype=object)
    )


def _dataset() -> LabelledDataset[TextSplit]:
    return LabelledDataset(
        name="t",
        uri="t",
        class_names=("a", "b"),
        fingerprint="f",
        train=_split(["ett", "två", "tre", "fire"]),
        val=_split(["fem", "seks"]),
        test=_split(["sju", "otte"]),
    )


def _two_sources() -> LabelledDataset[TextSplit]:
    """Four real texts, then two of a source at the global weight, two at its own 0.2."""
    dataset = with_extra_training(_dataset(), _split(["ni", "ti"]))  # the global weight
    return with_extra_training(dataset, _split(["elva", "tolv"]), weight=0.2)


def test_a_source_without_its_own_weight_leaves_the_split_as_before() -> None:
    dataset = with_extra_training(_dataset(), _split(["ni", "ti"]))
    # Every text weighs 1 at the default global weight, so the batches are unchanged.
    assert dataset.train.loss_weights(1.0).tolist() == [1.0] * 6
    module = TextDataModule(dataset, TextSpec(), batch_size=8, num_workers=0)
    assert len(next(iter(module.train_dataloader()))) == 2


def test_each_source_keeps_its_weight_and_the_rest_take_the_global_one() -> None:
    train = _two_sources().train
    assert train.extra_mask.tolist() == [False] * 4 + [True] * 4
    assert train.loss_weights(0.5).tolist() == pytest.approx([1, 1, 1, 1, 0.5, 0.5, 0.2, 0.2])
    assert train.loss_weights(1.0).tolist() == pytest.approx([1] * 6 + [0.2, 0.2])
    # Kept through take and refit's merge of the splits.
    assert train.take(np.array([7, 0, 5])).loss_weights(0.5).tolist() == pytest.approx(
        [0.2, 1.0, 0.5]
    )
    merged = all_labelled(_two_sources()).train
    assert merged.loss_weights(1.0).tolist() == pytest.approx([1] * 6 + [0.2, 0.2] + [1] * 4)


def test_the_weights_reach_the_training_loss() -> None:
    dataset = _two_sources()
    module = TextDataModule(dataset, TextSpec(), batch_size=8, num_workers=0)
    ids, labels, weights = module.train_dataloader().collate_fn([6, 0, 4, 7])
    assert weights.tolist() == pytest.approx([0.2, 1.0, 1.0, 0.2])  # global weight 1
    assert len(next(iter(module.val_dataloader()))) == 2  # evaluation is never weighted

    class Bag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.EmbeddingBag(int(ids.max()) + 1, 2, mode="sum")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.embed(x.long())

    torch.manual_seed(0)
    classifier = Classifier(Bag(), TrainConfig(), augment=False)
    loss = classifier._step((ids, labels, weights), "train")
    logits = classifier(ids)
    assert torch.allclose(loss, weighted_cross_entropy(logits, labels, weights), atol=1e-6)
    plain = classifier._step((ids, labels), "train")
    assert not torch.allclose(loss, plain)


def test_the_configured_source_weight_is_given_to_its_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wordfreq")
    nordic = Forms(frozenset({"og", "i", "ikke", "ikkje"}), frozenset())
    monkeypatch.setattr(wordlists, "_dictionary", lambda _: nordic)  # offline
    folder = write_ud_fixture(tmp_path)
    base = ["task=langid_nordic", f"data.path={folder}", "data.word_list_sentences=20"]
    plain = load_text_dataset(compose_config(base).data)
    weighted = load_text_dataset(
        compose_config([*base, "+data.extra_text_weights.word_lists=0.4"]).data
    )
    assert (plain.train.loss_weights(1.0) == 1).all()
    assert list(weighted.train.texts) == list(plain.train.texts)
    assert weighted.fingerprint == plain.fingerprint  # the weight is not the data
    extra = weighted.train.extra_mask
    assert extra.any() and np.allclose(weighted.train.weight[extra], 0.4)
    assert (weighted.train.weight[~extra] == 1).all()  # the UD sentences


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+data.extra_text_weights.manpage=0.3", r"extra_text_weights.manpage: unknown source"),
        ("+data.extra_text_weights.ddtp=0", r"extra_text_weights.ddtp must be in \(0, 1\]"),
        ("+data.extra_text_weights.ddtp=1.5", r"extra_text_weights.ddtp must be in \(0, 1\]"),
    ],
)
def test_bad_source_weights_are_refused_in_one_line(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        compose_config([override], paths=False)
    assert "\n" not in str(raised.value)


def test_source_weights_and_distillation_are_refused_together() -> None:
    overrides = ["distill.teacher=digits-cnn@production", "+data.extra_text_weights.ddtp=0.5"]
    with pytest.raises(ConfigError, match="extra_text_weights cannot be used with modelyard"):
        compose_config(overrides, paths=False)
    assert compose_config([], paths=False).data.extra_text_weights == {}
