"""The console script as a user runs it: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from tests.helpers import cli_in_fresh_interpreter, run_cli, write_image
from typer.testing import CliRunner

from modelyard.cli import app


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


@pytest.mark.parametrize(
    "args",
    [
        ["--debug", "evaluate", "nosuchmodel@candidate"],
        ["evaluate", "nosuchmodel@candidate", "--debug"],
        ["predict", "nosuchmodel@candidate", "x.png", "--debug"],
        ["export", "onnx", "nosuchmodel@candidate", "--debug", "--out", "x.onnx"],
    ],
)
def test_debug_shows_the_traceback_wherever_it_is_written(args: list[str], home: Path) -> None:
    result = run_cli(*args)
    assert result.returncode != 0 and "Traceback" in result.stderr, result.stderr
    assert "No such option" not in result.stderr


# (command words, prints a result) for every command and sub-command.
COMMANDS = [
    (["train"], True),
    (["config", "show"], True),
    (["evaluate"], True),
    (["predict"], True),
    (["inspect"], True),
    (["serve"], False),
    (["bench"], True),
    (["ui"], False),
    (["tune"], True),
    (["promote"], True),
    (["deploy"], True),
    (["export", "triton"], True),
    (["export", "onnx"], True),
    (["export", "quantize"], True),
    (["monitor", "drift"], True),
    (["monitor", "performance"], True),
    (["monitor", "compare"], True),
    (["rollback"], True),
    (["distill"], True),
    (["feedback", "import"], True),
    (["init"], True),
]


def _leaf_commands(group: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a sub-app (export, monitor, config)
            found |= _leaf_commands(command, (*prefix, name))
        else:
            found.add((*prefix, name))
    return found


def test_the_option_table_covers_every_command() -> None:
    assert _leaf_commands(typer.main.get_command(app)) == {tuple(w) for w, _ in COMMANDS}


@pytest.mark.parametrize(("words", "prints"), COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_every_command_takes_debug_and_json_where_it_prints(words: list[str], prints: bool) -> None:
    command: Any = typer.main.get_command(app)
    for word in words:
        command = command.commands[word]
    options = {opt for param in command.params for opt in param.opts}
    assert "--debug" in options
    assert ("--json" in options) == prints
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0 and "--debug" in result.output


def test_missing_data_path_fails_before_the_training_stack_loads(tmp_path: Path) -> None:
    # Run the command in a fresh interpreter and report what it imported: a mistyped
    # path must be refused before torch, Lightning or MLflow load (issue 20, item 12).
    for overrides, message in [
        (["task=image_folder", f"data.path={tmp_path / 'nope'}"], "image folder"),
        (["task=text_table", f"data.path={tmp_path / 'nope.csv'}"], "data file"),
    ]:
        env = {**os.environ, "MODELYARD_HOME": str(tmp_path / "home")}
        report = cli_in_fresh_interpreter(["train", *overrides], env)
        assert f"{message} {tmp_path / 'nope'}" in report["error"]
        assert "does not exist; set data.path" in report["error"]
        assert report["heavy"] == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+data.foo=1", "unknown config key 'data.foo'; valid keys in 'data'"),
        ("data.path=/x/y(1)", "quote the value: 'data.path=\"/x/y(1)\"'"),
    ],
)
def test_config_mistakes_are_one_line_errors(override: str, message: str, home: Path) -> None:
    result = run_cli("config", "show", override)
    assert result.returncode == 2 and message in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr


def test_tilde_path_from_the_readme_is_the_home_folder(tmp_path: Path, home: Path) -> None:
    (tmp_path / "pets").mkdir()
    result = run_cli(
        "config",
        "show",
        "task=image_folder",
        "data.path=~/pets",
        "--json",
        env={"HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"]["path"] == str(tmp_path / "pets")


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


def test_a_ctrl_c_in_any_command_ends_with_a_line_and_exit_130(tmp_path: Path) -> None:
    # bench waits on a server that accepts the connection and never answers; Ctrl-C
    # there used to bring the prompt back with nothing said (Typer's silent exit 130).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        exe = Path(sys.executable).with_name("modelyard")
        bench = subprocess.Popen(
            [str(exe), "bench", url, "--no-ceiling", "--timeout", "60s"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        silent.settimeout(60)
        connection, _ = silent.accept()  # bench is inside its command's body, waiting
        with connection:
            bench.send_signal(signal.SIGINT)
            _, err = bench.communicate(timeout=60)
    assert bench.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1:] == ["interrupted"], err[-2000:]
    assert "Traceback" not in err


def test_a_ctrl_c_in_a_sub_command_ends_the_same_way_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What an embedding program or CliRunner sees: exit 130 and the line, not an
    # exception of its own.
    def pressed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("modelyard.config.compose_config", pressed)
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 130, result.exception
    assert result.stderr == "interrupted\n"


def test_a_database_or_path_the_command_cannot_use_is_one_line_and_exit_2(
    tmp_path: Path, home: Path
) -> None:
    # Tracebacks before, with exit 1, which monitor drift uses for "drift found".
    garbage = tmp_path / "log.db"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    afile = tmp_path / "afile"
    afile.write_text("x")
    for db, words in [
        (f"sqlite:///{garbage}", "cannot use the database: file is not a database"),
        (f"sqlite:///{afile}/log.db", f"{afile}; check the path"),
    ]:
        result = run_cli("monitor", "drift", "digits-cnn", "--db", db)
        assert result.returncode == 2, result.stderr[-2000:]
        assert words in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
