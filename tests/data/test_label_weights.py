"""``data.label_weights``: a training-loss multiplier per label, on top of
``train.class_balance`` (modelyard.data.text, modelyard.config.schema)."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.config import compose_config
from modelyard.data.text import class_weights, training_class_weights
from modelyard.errors import ConfigError

NAMES = ("da", "sv", "other")
LABELS = np.array([0, 1, 1, 2, 2, 2])


def test_a_named_label_is_multiplied_and_the_rest_keep_their_weight() -> None:
    balanced = class_weights(LABELS, 3)
    got = training_class_weights(LABELS, NAMES, True, {"da": 2.0})
    assert got is not None and got.dtype == np.float32
    assert got.tolist() == pytest.approx([2 * balanced[0], balanced[1], balanced[2]])
    assert training_class_weights(LABELS, NAMES, False, {"sv": 3.0}).tolist() == [1, 3, 1]  # type: ignore[union-attr]


def test_no_weighting_at_all_is_the_unweighted_loss_and_balance_alone_is_unchanged() -> None:
    assert training_class_weights(LABELS, NAMES, False, {}) is None
    assert np.array_equal(training_class_weights(LABELS, NAMES, True, {}), class_weights(LABELS, 3))  # type: ignore[arg-type]


def test_a_label_the_data_does_not_have_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"data.label_weights.nb: no such label; use one of da"):
        training_class_weights(LABELS, NAMES, True, {"nb": 2.0})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+data.label_weights.xx=2", r"data.label_weights.xx: no such label; use one of da, sv"),
        ("+data.label_weights.da=0", r"data.label_weights.da must be positive, got 0"),
        ("+data.label_weights.da=-1", r"data.label_weights.da must be positive"),
    ],
)
def test_bad_label_weights_are_refused_in_one_line(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        compose_config(["task=langid_nordic", override], paths=False)
    assert "\n" not in str(raised.value)


def test_label_weights_are_for_text_and_not_for_distillation() -> None:
    with pytest.raises(ConfigError, match=r"data\.label_weights is for text tasks"):
        compose_config(["+data.label_weights.zero=2"], paths=False)
    overrides = ["task=langid_nordic", "distill.teacher=x@production", "+data.label_weights.da=2"]
    with pytest.raises(ConfigError, match=r"data\.label_weights cannot be used with modelyard"):
        compose_config(overrides, paths=False)
    cfg = compose_config(["task=langid_nordic", "+data.label_weights.da=2"], paths=False)
    assert cfg.data.label_weights == {"da": 2.0}
