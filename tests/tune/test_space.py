"""``tune.space``: what a user may declare, the errors when they get it wrong."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from modelyard.config import compose_config
from modelyard.errors import ConfigError, ModelyardError
from modelyard.tune.commands import read_space
from modelyard.tune.space import override, parse_param, parse_space
from modelyard.tune.study import check_space


def test_the_default_space_parses_and_every_corner_composes() -> None:
    overrides = ["task=digits", "train=fast"]
    params = check_space(overrides, compose_config(overrides))
    assert [p.key for p in params] == [
        "train.lr",
        "train.batch_size",
        "train.weight_decay",
        "model.hidden",
        "model.dropout",
    ]
    lr = params[0]
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1.0e-4, 1.0e-2, True)


@pytest.mark.parametrize(
    ("key", "spec", "message"),
    [
        ("train.lrate", {"type": "float", "low": 0.1, "high": 1}, "valid keys in 'train': max_"),
        ("nope.lr", {"type": "float", "low": 0.1, "high": 1}, "names no tunable config section"),
        ("tracking.uri", {"type": "categorical", "choices": ["a"]}, "no tunable config section"),
        ("train.lr", {"type": "gauss", "low": 0.1, "high": 1}, "type must be one of float, int"),
        ("train.lr", {"type": "float", "low": 0.1, "hi": 1}, "unknown keys hi; a float takes"),
        ("train.lr", {"type": "float", "low": 1, "high": 0.1}, "needs low < high"),
        ("train.lr", {"type": "float", "low": 0, "high": 1, "log": True}, "low must be positive"),
        ("train.lr", {"type": "float", "low": "a", "high": 1}, "low must be a number"),
        ("model.hidden", {"type": "int", "low": 1.5, "high": 4}, "must be integers"),
        ("model.hidden", {"type": "categorical", "choices": []}, "non-empty list"),
        ("model.hidden", 64, "must be a mapping"),
    ],
)
def test_bad_entries_name_the_problem(key: str, spec: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_param(key, spec)
    assert message in str(caught.value)


def test_an_empty_space_says_what_to_write() -> None:
    with pytest.raises(ConfigError, match=r"tune.space is empty; declare what to search"):
        parse_space({})


def test_a_value_the_schema_rejects_fails_before_any_trial() -> None:
    overrides = ["task=digits", "train=fast"]
    cfg = compose_config(overrides)
    # batch_size is an int field: a float range cannot be composed.
    cfg.tune.space = {"train.batch_size": {"type": "float", "low": 0.5, "high": 1.5}}
    with pytest.raises(ConfigError, match=r"tune.space: train.batch_size=0.5 is not a valid"):
        check_space(overrides, cfg)
    cfg.tune.space = {"model.channels": {"type": "categorical", "choices": [[8], [8, 8, 8, 8]]}}
    with pytest.raises(ConfigError, match="too many for 8px images"):
        check_space(overrides, cfg)


def test_list_choices_round_trip_through_optuna_and_become_overrides() -> None:
    param = parse_param("model.channels", {"type": "categorical", "choices": [[8, 16], [16, 32]]})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values = {str(param.suggest(study.ask())) for _ in range(20)}
    assert values == {"[8, 16]", "[16, 32]"}
    cfg = compose_config(["task=digits", override("model.channels", [8, 16])])
    assert cfg.model.channels == [8, 16]
    assert override("train.lr", 0.001) == "train.lr=0.001"


def test_int_and_stepped_ranges_sample_inside_their_bounds() -> None:
    hidden = parse_param("model.hidden", {"type": "int", "low": 16, "high": 64, "step": 16})
    dropout = parse_param("model.dropout", {"type": "float", "low": 0.1, "high": 0.3})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        assert hidden.suggest(trial) in (16, 32, 48, 64)
        assert 0.1 <= dropout.suggest(trial) <= 0.3


def test_a_space_file_replaces_the_configured_space(tmp_path: Path) -> None:
    flat = tmp_path / "flat.yaml"
    flat.write_text("train.lr: {type: float, low: 1.0e-3, high: 1.0e-2}\n")
    nested = tmp_path / "nested.yaml"
    nested.write_text("space:\n  model.hidden: {type: categorical, choices: [32, 64]}\n")
    assert list(read_space(flat)) == ["train.lr"]
    assert read_space(nested) == {"model.hidden": {"type": "categorical", "choices": [32, 64]}}
    listed = tmp_path / "list.yaml"
    listed.write_text("- train.lr\n")
    with pytest.raises(ModelyardError, match="must map config keys to distributions"):
        read_space(listed)
    with pytest.raises(ModelyardError, match="does not exist"):
        read_space(tmp_path / "missing.yaml")
