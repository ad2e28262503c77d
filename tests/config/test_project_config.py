"""A project's own config folder (./config, or MODELYARD_CONFIG_DIR) is searched before
the package's: its files replace the package's of the same name, the rest stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.config import compose_config
from modelyard.config.compose import CONFIG_DIR_ENV, project_config_dir
from modelyard.errors import ConfigError


def _project(root: Path) -> Path:
    config = root / "config"
    (config / "task").mkdir(parents=True)
    (config / "train").mkdir()
    (config / "config.yaml").write_text(
        "defaults:\n  - schema\n  - task: mine\n  - tune: default\n  - _self_\n"
    )
    (config / "task" / "mine.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - /data: digits\n  - /model: cnn_small\n  - /train: default\n"
        "task:\n  name: mine\n  model_name: mine-cnn\n  kind: image\n"
    )
    # Replaces the package's train/default.yaml (whose max_epochs is 10).
    (config / "train" / "default.yaml").write_text("max_epochs: 77\nlr: 0.5\n")
    return config


def test_the_working_directory_config_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONFIG_DIR_ENV, raising=False)
    config = _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert project_config_dir() == config.resolve()
    cfg = compose_config()
    assert (cfg.task.name, cfg.task.model_name) == ("mine", "mine-cnn")
    assert (cfg.train.max_epochs, cfg.train.lr) == (77, 0.5)
    # The package's options remain, and the project's train/default still wins.
    shipped = compose_config(["task=digits", "train.batch_size=8"])
    assert shipped.task.name == "digits" and shipped.train.max_epochs == 77
    assert compose_config(["train=fast"]).train.max_epochs == 3
    with pytest.raises(ConfigError, match=r"Available options in 'task'.*mine"):
        compose_config(["task=nosuch"])


def test_without_a_project_config_the_package_defaults_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONFIG_DIR_ENV, raising=False)
    (tmp_path / "config").mkdir()  # some other tool's config/ folder: no config.yaml
    monkeypatch.chdir(tmp_path)
    assert project_config_dir() is None
    assert compose_config().task.name == "mnist5k"


def test_modelyard_config_dir_names_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _project(tmp_path / "project")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CONFIG_DIR_ENV, str(config))
    assert compose_config().task.name == "mine"
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=rf"{CONFIG_DIR_ENV}=.*nowhere has no config\.yaml"):
        compose_config()
