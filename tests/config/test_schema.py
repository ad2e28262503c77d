"""validate(): values set after composing are checked like composed ones."""

from __future__ import annotations

import pytest

from modelyard.choices import DataSource, Split
from modelyard.config import compose_config
from modelyard.config.schema import validate
from modelyard.errors import ConfigError


def test_a_plain_string_set_after_composing_becomes_the_member() -> None:
    # scoring.config_for puts a bundle's recorded data settings (plain JSON strings) in.
    cfg = compose_config(["task=digits"], validated=False)
    cfg.data.source = "digits"  # type: ignore[assignment]  # as read back from bundle.json
    cfg.promote.split = "val"  # type: ignore[assignment]
    validate(cfg)
    assert cfg.data.source is DataSource.digits and cfg.promote.split is Split.val


def test_a_bad_value_set_after_composing_names_the_choices() -> None:
    cfg = compose_config(["task=digits"], validated=False)
    cfg.data.source = "imagenet"  # type: ignore[assignment]
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    assert str(error.value) == (
        "data.source='imagenet' is not a valid choice; choose one of mnist5k, digits, mnist, "
        "fashion_mnist, image_folder, conllu, table"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.augment_degrees=181", "train.augment_degrees must be within [0, 180], got 181.0"),
        ("train.augment_degrees=-1", "train.augment_degrees must be within [0, 180], got -1.0"),
        ("train.augment_scale=1", "train.augment_scale must be within [0, 1), got 1.0"),
        ("train.augment_shift=0.6", "train.augment_shift must be within [0, 0.5], got 0.6"),
        ("train.augment_elastic=-1", "train.augment_elastic must be >= 0 (0: off), got -1.0"),
        ("train.augment_elastic_sigma=0", "train.augment_elastic_sigma must be positive, got 0.0"),
        ("train.augment_erasing=1.5", "train.augment_erasing must be within [0, 1], got 1.5"),
    ],
)
def test_an_augmentation_strength_out_of_range_is_refused_in_one_line(
    override: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        compose_config(["task=digits", override])
    assert str(error.value) == message


def test_augmentation_strengths_at_their_bounds_are_accepted() -> None:
    overrides = ["train.augment_degrees=180", "train.augment_scale=0", "train.augment_shift=0.5"]
    cfg = compose_config(["task=digits", *overrides])
    assert (cfg.train.augment_degrees, cfg.train.augment_scale, cfg.train.augment_shift) == (
        180.0,
        0.0,
        0.5,
    )
