"""Closed sets of strings: one spelling for OmegaConf, Typer, JSON and MLflow."""

from __future__ import annotations

import json

import pytest

import modelyard.bench.protocol
import modelyard.export.triton  # defines InstanceKind
from modelyard.choices import Choice, DataSource, Precision, Split, invalid_choice
from modelyard.config import compose_config, flatten, from_yaml, to_dict, to_yaml


def _all_choices(cls: type[Choice] = Choice) -> list[type[Choice]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_choices(sub)]
    return found


def test_every_member_is_named_as_it_is_spelled() -> None:
    # OmegaConf reads a value by the member's name, Typer by its value: they must agree.
    sets = _all_choices()
    assert Precision in sets and modelyard.bench.protocol.Protocol in sets
    for choice in sets:
        assert [m.name for m in choice] == choice.values(), choice


def test_a_member_is_its_plain_string() -> None:
    assert Split.val == "val" and str(Split.val) == "val" and f"{Split.val}" == "val"
    assert json.dumps({"split": Split.val}) == '{"split": "val"}'
    assert {"val": 1}[Split.val] == 1


def test_an_integer_precision_from_yaml_is_the_string_member() -> None:
    assert Precision(32) is Precision["32"]
    with pytest.raises(ValueError):
        Precision(64)
    with pytest.raises(ValueError):
        DataSource(True)


def test_config_values_stay_plain_strings_in_every_record() -> None:
    cfg = compose_config(["task=langid_nordic", "train.precision=bf16-mixed"], paths=False)
    assert cfg.data.source is DataSource.conllu and cfg.train.precision == "bf16-mixed"
    assert flatten(cfg)["train.precision"] == "bf16-mixed"
    assert flatten(cfg)["data.source"] == "conllu"
    assert json.loads(json.dumps(to_dict(cfg)))["data"]["split_by"] == "document"
    assert "precision: bf16-mixed" in to_yaml(cfg)
    assert from_yaml(to_yaml(cfg)) == cfg
    # Hydra reads train.precision=32 as an integer; it is the member "32".
    assert compose_config(["train.precision=32"]).train.precision is Precision["32"]


def test_the_complaint_names_the_key_and_every_valid_value() -> None:
    assert invalid_choice("promote.split", "dev", Split.values()) == (
        "promote.split='dev' is not a valid choice; choose one of train, val, test"
    )
