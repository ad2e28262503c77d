"""``train.prune``: a pruned digits run bundles a smaller graph and says what pruning
did; a pruning that cannot work is a one-line error before any training."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from mlflow.tracking import MlflowClient
from tests.conftest import FAST
from tests.helpers import CtrlCInWrite, run_cli
from torch import nn

from modelyard import bundle
from modelyard.config import compose_config
from modelyard.errors import ConfigError
from modelyard.train import prune
from modelyard.train.prune import finetune_config
from modelyard.train.run import TrainResult, train

PRUNE = [*FAST, "train.prune_finetune_epochs=1"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["train.prune=channels", "train.prune_amount=1.0"],
            "train.prune_amount must be in [0, 1) (the share of each layer pruned), got 1.0",
        ),
        (["train.prune=magnitude", "train.prune_amount=-0.1"], "must be in [0, 1)"),
        (
            # digits' cnn_small has 16 and 32 channels: 0.97 x 16 rounds to all 16.
            ["train.prune=channels", "train.prune_amount=0.97"],
            "train.prune_amount=0.97 leaves block 0's convolutions (model.channels[0]=16 "
            "channels) with 0 channels",
        ),
        (
            ["train.prune=structured"],
            "train.prune='structured' is not a valid choice; choose one of none, channels, "
            "magnitude",
        ),
        (["train.prune=channels", "train.devices=2"], "train.prune fine-tunes in one process"),
    ],
)
def test_impossible_pruning_is_refused_while_composing(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        compose_config([*FAST, *overrides])
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_models_that_cannot_lose_channels_are_named() -> None:
    with pytest.raises(ConfigError) as error:
        compose_config(["task=langid_nordic", "train.prune=channels"])
    assert str(error.value) == (
        "train.prune=channels cannot prune model.name=fasttext; it supports model.name=cnn "
        "(image CNNs); use train.prune=none"
    )


def test_the_cli_refuses_in_one_line_before_training(home: Path) -> None:
    result = run_cli("train", *FAST, "train.prune=channels", "train.prune_amount=0.97")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "model.channels[0]=16 channels" in result.stderr
    assert not (home / "runs").exists()  # no run was opened


@pytest.mark.slow
def test_channel_pruned_run_bundles_a_smaller_graph(trained: TrainResult, home: Path) -> None:
    pruned = train(compose_config([*PRUNE, "train.prune=channels", "train.prune_amount=0.5"]))
    dense = bundle.load(trained.bundle_path).manifest
    manifest = bundle.load(pruned.bundle_path).manifest
    record = manifest["pruning"]
    assert record["method"] == "channels" and record["amount"] == 0.5
    assert [(r["layer"], r["before"], r["after"]) for r in record["layers"]] == [
        ("features.0", 16, 8),
        ("features.4", 32, 16),
        ("embedding.1", 32 * 2 * 2, 16 * 2 * 2),
    ]
    # The bundle's own cost report (counted from its ONNX graph) shows the saving.
    assert record["macs_before"] == dense["cost"]["macs_per_example"]
    assert manifest["cost"]["macs_per_example"] == record["macs_after"]
    assert record["macs_after"] < 0.35 * record["macs_before"]
    assert manifest["cost"]["parameters"] < 0.5 * dense["cost"]["parameters"]
    assert 0.0 < manifest["metrics"]["test_accuracy"] == pruned.metrics["test_accuracy"]
    run = MlflowClient().get_run(pruned.run_id)
    assert run.data.metrics["prune_macs_after"] == record["macs_after"]
    assert run.data.params["prune_layers"].startswith("features.0 16->8, features.4 32->16")
    steps = MlflowClient().get_metric_history(pruned.run_id, "prune_val_acc")
    assert [m.step for m in steps] == [0]  # one fine-tuning epoch, logged apart


@pytest.mark.slow
def test_magnitude_pruned_run_says_it_saves_nothing_on_cpu(
    trained: TrainResult, home: Path
) -> None:
    pruned = train(compose_config([*PRUNE, "train.prune=magnitude", "train.prune_amount=0.5"]))
    manifest = bundle.load(pruned.bundle_path).manifest
    record = manifest["pruning"]
    assert "ONNX Runtime on CPU runs it no faster" in record["note"]
    assert record["macs_after"] == record["macs_before"] == manifest["cost"]["macs_per_example"]
    assert record["zeroed_weights"] > 0.45 * sum(r["before"] for r in record["layers"])
    assert manifest["metrics"]["test_accuracy"] > 0.0


def test_fine_tuning_after_pruning_trains_plain_weights_for_its_own_epochs() -> None:
    """The mnist5k default averages weights (train.ema); an average begun at the
    just-pruned weights kept much of them after a short fine-tuning (0.73 test)."""
    cfg = compose_config(["task=mnist5k", "train.prune=channels", "train.prune_finetune_epochs=3"])
    assert cfg.train.ema > 0
    tuning = finetune_config(cfg.train)
    assert (tuning.ema, tuning.max_epochs, tuning.min_epochs) == (0.0, 3, 3)
    assert tuning.lr == cfg.train.lr


def test_a_ctrl_c_inside_the_pruning_records_writes_comes_after_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record is logged after the fine-tune, between training and the bundle: a
    Ctrl-C cut short there would lock the store for the write that ends the run KILLED."""
    monkeypatch.setattr(prune, "graph_cost", lambda model, in_shape, opset: (1000, 100))
    monkeypatch.setattr(prune, "_finetune", lambda cfg, module, datamodule, folder: (0.8, 0.9))
    ctrl_c = CtrlCInWrite()
    for name in ("log_metrics", "log_params", "log_dict"):
        monkeypatch.setattr(prune.mlflow, name, ctrl_c.write(name))
    module: Any = SimpleNamespace(model=nn.Sequential(nn.Flatten(), nn.Linear(64, 4)))
    cfg = compose_config([*PRUNE, "train.prune=magnitude"])
    with pytest.raises(KeyboardInterrupt):
        prune.prune_and_finetune(cfg, module, cast(Any, None), tmp_path, (1, 8, 8))
    assert ctrl_c.names() == ["log_metrics", "log_params", "log_dict"]
