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
