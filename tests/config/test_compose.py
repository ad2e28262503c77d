from __future__ import annotations

import pytest

from modelyard.config import Config, compose_config, flatten, from_yaml, to_yaml
from modelyard.errors import ConfigError


def test_default_is_mnist5k_with_typed_sections() -> None:
    cfg = compose_config()
    assert isinstance(cfg, Config)
    assert cfg.task.name == "mnist5k" and cfg.data.source == "mnist5k"
    assert cfg.model.channels == [32, 64, 128]


def test_overrides_and_groups_compose() -> None:
    cfg = compose_config(["task=digits", "train=fast", "train.lr=0.01", "model.hidden=32"])
    assert cfg.data.source == "digits" and cfg.data.image_size == 8
    assert cfg.train.max_epochs == 3 and cfg.train.lr == 0.01 and cfg.model.hidden == 32


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.foo=1", "unknown config key 'train.foo'; valid keys in 'train': max_epochs"),
        ("nope.key=1", "unknown config section 'nope'"),
        ("train.max_epochs=abc", "could not be converted to Integer (full_key: train.max_epochs)"),
        (
            "task=nope",
            "Available options in 'task': digits fashion_mnist image_folder langid_nordic "
            "mnist mnist5k text_table",
        ),
        ("model=nope", "Available options in 'model': cnn cnn_small fasttext"),
        (
            "train.optimizer=sgd",
            "train.optimizer='sgd' is not a valid choice; choose one of adam, adamw",
        ),
        ("train.precision=64", "choose one of 32, bf16-mixed, 16-mixed"),
        ("data.val_fraction=0.9", "data.val_fraction must be between 0 and 0.5"),
        ("task=image_folder", "data.source=image_folder needs data.path"),
        ("maxepochs", "is not an override; write key=value"),
    ],
)
def test_bad_config_names_the_key_and_choices(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        compose_config([override])
    assert expected in str(error.value)
    assert "\n" not in str(error.value).strip()


def test_too_many_blocks_for_tiny_images_is_rejected() -> None:
    with pytest.raises(ConfigError, match="too many for 8px images"):
        compose_config(["task=digits", "model.channels=[8,8,8,8]"])


def test_yaml_round_trip_and_flat_params() -> None:
    cfg = compose_config(["task=digits", "train.seed=7"])
    assert from_yaml(to_yaml(cfg)) == cfg
    flat = flatten(cfg)
    assert flat["train.seed"] == "7" and flat["data.source"] == "digits"
    assert len(flat) > 30
