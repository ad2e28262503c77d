"""The torch half of an input kind: which kinds train, and what a kind without a
network says."""

from __future__ import annotations

import pytest

from modelyard.config.schema import Config
from modelyard.errors import ConfigError
from modelyard.modality import kinds
from modelyard.train import run


def test_every_trainable_kind_is_a_registered_modality() -> None:
    assert set(run.SETUPS) == {"image", "text"}
    assert set(run.SETUPS) <= set(kinds())


def test_a_kind_without_a_network_names_the_kinds_that_train() -> None:
    cfg = Config()
    cfg.task.kind = "tabular"
    with pytest.raises(
        ConfigError,
        match=r"task\.kind=tabular cannot be trained here; trainable kinds: image, text",
    ):
        run._setup(cfg, None, None)
