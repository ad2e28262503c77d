"""modelyard.pipeline and dvc.yaml: params become config overrides, the splits survive
a round trip, and `dvc repro` reruns exactly the stages whose inputs changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelyard.config import compose_config
from modelyard.data import load_dataset
from modelyard.errors import ConfigError
from modelyard.pipeline import load_config, overrides_from_params, read_dataset, save_dataset

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("prepare", "train", "evaluate", "export")


def test_params_become_hydra_overrides() -> None:
    params = {
        "task": "digits",
        "data": {"limit": None},
        "model": {"channels": [8, 16]},
        "train": {"lr": 0.01, "augment": False},
        "triton": {"max_batch_size": 8},  # not a config section: left to the export stage
    }
    assert overrides_from_params(params) == [
        "task=digits",
        "data.limit=null",
        "model.channels=[8,16]",
        "train.lr=0.01",
        "train.augment=false",
    ]
    cfg = compose_config(overrides_from_params(params))
    assert cfg.model.channels == [8, 16] and cfg.train.augment is False


def test_the_committed_params_compose() -> None:
    cfg = load_config(ROOT / "params.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert cfg.task.name == params["task"]
    assert cfg.train.max_epochs == params["train"]["max_epochs"]


def test_bad_params_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="needs a `task:`"):
        overrides_from_params({"train": {"lr": 0.1}})
    with pytest.raises(ConfigError, match="`train` must be a mapping"):
        overrides_from_params({"task": "digits", "train": 3})


def test_prepared_splits_round_trip(tmp_path: Path) -> None:
    dataset = load_dataset(compose_config(["task=digits", "data.limit=40"]).data)
    save_dataset(dataset, tmp_path / "splits.npz")
    again = read_dataset(tmp_path / "splits.npz")
    assert again.fingerprint == dataset.fingerprint
    assert again.class_names == dataset.class_names
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(again.split(name).images, dataset.split(name).images)
        np.testing.assert_array_equal(again.split(name).labels, dataset.split(name).labels)


def _repro(repo: Path, env: dict[str, str]) -> tuple[set[str], set[str]]:
    """Run `dvc repro`; the stages it ran and the ones it skipped."""
    result = subprocess.run(
        [env["DVC"], "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ran = {s for s in STAGES if f"Running stage '{s}'" in result.stdout}
    skipped = {s for s in STAGES if f"Stage '{s}' didn't change, skipping" in result.stdout}
    assert ran | skipped == set(STAGES), result.stdout
    return ran, skipped


@pytest.mark.slow
def test_dvc_repro_reruns_only_what_changed(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    dvc = bin_dir / "dvc"
    if not dvc.exists():
        pytest.fail(f"dvc is not installed in {bin_dir}: install modelyard[dvc] (make install)")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["task"] = "digits"  # seconds, not minutes
    params["train"].update(max_epochs=1, batch_size=128)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",  # `python`, `modelyard`
        "MODELYARD_HOME": str(tmp_path / "home"),
        "DVC_NO_ANALYTICS": "1",
        "DVC": str(dvc),
    }
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([str(dvc), "init", "-q"], cwd=repo, env=env, check=True)

    assert _repro(repo, env) == (set(STAGES), set())
    assert (repo / "pipeline" / "triton" / "digits-cnn" / "config.pbtxt").exists()
    metrics = yaml.safe_load((repo / "pipeline" / "metrics" / "test.json").read_text())
    assert metrics["n"] == 180 and 0.0 < metrics["accuracy"] <= 1.0

    assert _repro(repo, env) == (set(), set(STAGES))  # nothing changed: nothing runs

    params["model"]["dropout"] = 0.1  # a training parameter: data stays as prepared
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert _repro(repo, env) == ({"train", "evaluate", "export"}, {"prepare"})
