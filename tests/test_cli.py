"""The console script as a user runs it: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from tests.helpers import run_cli, write_image


def test_config_show_prints_the_resolved_config() -> None:
    result = run_cli("config", "show", "task=digits", "train.lr=0.5", "--json")
    assert result.returncode == 0, result.stderr
    cfg = json.loads(result.stdout)
    assert cfg["data"]["source"] == "digits" and cfg["train"]["lr"] == 0.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "train.epochs=3"], "unknown config key 'train.epochs'; valid keys in 'train'"),
        (
            ["train", "task=image_folder", "data.path=/no/such/folder"],
            "does not exist; set data.path",
        ),
        (["evaluate", "nosuchmodel@candidate"], "registered model 'nosuchmodel' not found"),
        (["predict", "nosuchmodel@candidate", "x.png"], "registered model 'nosuchmodel' not found"),
    ],
)
def test_user_errors_are_one_line_without_traceback(
    args: list[str], message: str, home: Path
) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr


def test_debug_shows_the_traceback(home: Path) -> None:
    result = run_cli("--debug", "evaluate", "nosuchmodel@candidate")
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.slow
def test_train_evaluate_predict_round_trip(home: Path, tmp_path: Path) -> None:
    trained = run_cli("train", "task=digits", "train=fast", "--json")
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["model_uri"] == "models:/digits-cnn@candidate"
    assert summary["model_version"] == "1"
    assert Path(summary["bundle"], "model.onnx").exists()

    evaluated = run_cli("evaluate", "digits-cnn@candidate", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["accuracy"] == pytest.approx(summary["metrics"]["test_accuracy"])
    assert report["run_id"]

    images = tmp_path / "inputs"
    write_image(images / "a.png", (32, 32))
    write_image(images / "sub" / "b.jpg", (10, 12), "RGB")
    np.save(tmp_path / "batch.npy", np.zeros((3, 8, 8), np.uint8))
    out = tmp_path / "preds.csv"
    predicted = run_cli(
        "predict",
        "digits-cnn@candidate",
        str(images),
        str(tmp_path / "batch.npy"),
        "--out",
        str(out),
    )
    assert predicted.returncode == 0, predicted.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5
    assert rows[0]["file"].endswith("a.png") and rows[-1]["file"].endswith("batch.npy[2]")
    assert set(rows[0]) == {"file", "label", "confidence", *(f"p_{d}" for d in range(10))}
    for row in rows:
        probs = [float(row[f"p_{d}"]) for d in range(10)]
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
        assert float(row["confidence"]) == pytest.approx(max(probs), abs=1e-6)
        assert row["label"] == str(int(np.argmax(probs)))

    bad = run_cli("predict", "digits-cnn@candidate", str(tmp_path / "missing.png"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr
