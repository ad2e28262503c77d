from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from modelyard.config import Config, compose_config, flatten, from_yaml, to_yaml
from modelyard.errors import ConfigError


def test_default_is_mnist5k_with_typed_sections() -> None:
    cfg = compose_config()
    assert isinstance(cfg, Config)
    assert cfg.task.name == "mnist5k" and cfg.data.source == "mnist5k"
    # The part-5 recipe (issue 17): the 1.8 M-MAC CNN with averaged weights.
    assert (cfg.model.channels, cfg.model.convs_per_block, cfg.model.hidden) == ([20, 40], 1, 128)
    assert cfg.train.ema == 0.995 and cfg.train.max_epochs == 30


def test_the_old_mnist5k_recipe_is_two_groups_away() -> None:
    cfg = compose_config(["model=cnn", "train=default"])
    assert cfg.model.channels == [32, 64, 128] and cfg.model.convs_per_block == 2
    assert cfg.train.ema == 0.0 and cfg.train.max_epochs == 20


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
        ("model=nope", "Available options in 'model': cnn cnn_fast cnn_small fasttext"),
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


def test_tilde_in_a_path_is_the_home_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The shell leaves ~ after '=' alone and Hydra's grammar rejects it (issue 20).
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "pets" / "cat").mkdir(parents=True)
    cfg = compose_config(["task=image_folder", "data.path=~/pets"])
    assert cfg.data.path == str(tmp_path / "pets")
    user = pwd.getpwuid(os.getuid())
    assert compose_config([f"data.path=~{user.pw_name}"]).data.path == user.pw_dir
    # Quoted for Hydra, the ~ survives parsing and is still expanded.
    assert compose_config(['data.path="~/pets"']).data.path == str(tmp_path / "pets")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "data.path=/x/y(1)",
            "cannot read 'data.path=/x/y(1)' (mismatched input '(' expecting <EOF>); "
            "quote the value: 'data.path=\"/x/y(1)\"'",
        ),
        ("data.path=~nosuchuser9/x", "quote the value: 'data.path=\"~nosuchuser9/x\"'"),
        ("data.path=a#b", "cannot read 'data.path=a#b'"),
        ("data.path=a,b", "has a comma, which Hydra reads as several values; for a list"),
    ],
)
def test_unreadable_value_names_the_override_and_how_to_quote_it(
    override: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        compose_config([override])
    assert expected in str(error.value)
    assert "LexerNoViableAlt" not in str(error.value) and "\n" not in str(error.value)
    # The quoted form the message suggests is read as one plain value.
    quoted = override.replace("=", '="', 1) + '"'
    assert compose_config([quoted]).data.path == override.split("=", 1)[1]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("+data.foo=1", "unknown config key 'data.foo'; valid keys in 'data': source, path"),
        ("++data.foo=1", "unknown config key 'data.foo'; valid keys in 'data'"),
        ("+nope.key=1", "unknown config section 'nope'"),
        ("+foo=1", "unknown config section 'foo' in '+foo=1'; valid: task, data"),
        ("foo=1", "unknown config section 'foo' in 'foo=1'"),
        ("+data.path.x=1", "unknown config key 'data.path.x'"),
        ("data.files.x=da", "'data.files.x' adds a key to the mapping data.files: write +data"),
    ],
)
def test_plus_on_an_unknown_key_is_refused_not_dropped(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        compose_config([override])
    assert expected in str(error.value)


def test_plus_on_a_known_key_or_group_is_the_plain_override() -> None:
    cfg = compose_config(["+train.lr=0.5", "++train.seed=3", "+model=cnn_small"])
    assert cfg.train.lr == 0.5 and cfg.train.seed == 3 and cfg.model.channels == [16, 32]
    # Below a mapping field '+' keeps Hydra's meaning: add a key.
    assert compose_config(["+data.files.x=da"]).data.files == {"x": "da"}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["task=image_folder", "data.path={missing}"],
            "image folder {missing} does not exist; set data.path to a folder with one "
            "sub-folder per class",
        ),
        (["task=image_folder", "data.path={file}"], "image folder {file} is a file, not a folder"),
        (
            ["task=text_table", "data.path={missing}.csv"],
            "data file {missing}.csv does not exist; set data.path to a CSV, TSV, JSONL or "
            "Parquet file",
        ),
        (["task=text_table", "data.path={tmp}"], "data file {tmp} is a folder, not a file"),
        (
            ["task=langid_nordic", "data.path={missing}"],
            "data folder {missing} does not exist; set data.path to the folder holding the "
            "CoNLL-U files",
        ),
    ],
)
def test_data_path_must_exist(overrides: list[str], expected: str, tmp_path: Path) -> None:
    names = {"missing": tmp_path / "nope", "file": tmp_path / "a.csv", "tmp": tmp_path}
    (tmp_path / "a.csv").write_text("text,label\n")
    with pytest.raises(ConfigError) as error:
        compose_config([o.format(**names) for o in overrides])
    assert expected.format(**names) in str(error.value)
    # `config show` composes without the check: a config can be read for another machine.
    assert compose_config([o.format(**names) for o in overrides], paths=False)


def test_built_in_sources_ignore_data_path() -> None:
    assert compose_config(["task=digits", "data.path=/nope"]).data.path == "/nope"


@pytest.mark.parametrize("task", ["digits", "langid_nordic"])
@pytest.mark.parametrize(
    "override",
    [
        "promote.max_latency_ms=-1",
        "promote.latency_repeats=0",
        "train.lr=0",
        "export.parity_atol=0",
    ],
)
def test_shared_settings_are_checked_for_every_kind_of_task(task: str, override: str) -> None:
    # validate() used to return early for text tasks, accepting these.
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        compose_config([f"task={task}", override])
