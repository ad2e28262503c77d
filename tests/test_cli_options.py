"""How every command declares its parameters, and what a wrong choice on the command
line gets: the option, the bad value and the valid ones, on one line."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, get_origin, get_type_hints

import pytest
import typer
from tests.helpers import run_cli
from typer.testing import CliRunner

from modelyard.cli import app


def _callbacks(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """(command path, Python function) of every command and group callback."""
    found = []
    if command.callback is not None:
        found.append((" ".join(path) or "modelyard", inspect.unwrap(command.callback)))
    for name, sub in getattr(command, "commands", {}).items():
        found += _callbacks(sub, (*path, name))
    return found


CALLBACKS = _callbacks(typer.main.get_command(app))


def test_the_walk_finds_every_command() -> None:
    names = {name for name, _ in CALLBACKS}
    assert {"modelyard", "train", "export triton", "monitor drift", "promote"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize(("name", "function"), CALLBACKS, ids=[n for n, _ in CALLBACKS])
def test_every_parameter_is_declared_with_annotated(name: str, function: Any) -> None:
    # The old style (`x: int = typer.Option(1, ...)`) hides the default inside a call
    # whose type is Any, so mypy cannot check it; Annotated keeps both visible.
    hints = get_type_hints(function, include_extras=True)
    for parameter in inspect.signature(function).parameters.values():
        assert get_origin(hints[parameter.name]) is Annotated, f"{name}: {parameter.name}"
        default = parameter.default
        assert not isinstance(default, typer.models.ParameterInfo), f"{name}: {parameter.name}"


@pytest.mark.parametrize(
    ("args", "choices"),
    [
        (["bench", "http://127.0.0.1:1", "--protocol", "v3"], "'v2', 'v1'"),
        (["evaluate", "m@candidate", "--split", "dev"], "'train', 'val', 'test'"),
        (["promote", "m", "--to", "prod"], "'staging', 'production'"),
        (["export", "triton", "m@candidate", "--kind", "GPU"], "'KIND_CPU', 'KIND_GPU'"),
    ],
)
def test_a_bad_choice_names_the_valid_ones_on_one_line(args: list[str], choices: str) -> None:
    result = CliRunner().invoke(app, args, standalone_mode=False)
    assert result.exception is not None
    message = result.exception.format_message()  # type: ignore[attr-defined]  # a click UsageError
    assert f"'{args[-1]}' is not one of {choices}" in message
    assert args[-2] in message and "\n" not in message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["evaluate", "m@candidate", "--split", "dev"],
            "error: Invalid value for '--split': 'dev' is not one of 'train', 'val', 'test'.",
        ),
        (["promote", "m"], "error: Missing option '--to'. Choose from: staging, production"),
    ],
)
def test_the_console_script_says_it_on_one_line(args: list[str], message: str, home: Path) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_a_bad_choice_in_an_override_is_a_one_line_error(home: Path) -> None:
    result = run_cli("config", "show", "train.scheduler=warm")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: train.scheduler='warm' is not a valid choice; choose one of "
        "none, cosine, onecycle, step, plateau"
    )


def test_help_lists_the_choices() -> None:
    result = CliRunner().invoke(app, ["bench", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "v2|v1" in result.output


def test_an_interrupted_command_says_how_to_go_on_and_exits_130() -> None:
    from modelyard.cli_options import exit_interrupted

    tiny = typer.Typer()

    @tiny.command()
    def work() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            exit_interrupted("interrupted; resume it with: modelyard train --resume")

    result = CliRunner().invoke(tiny, [])
    assert result.exit_code == 130
    assert result.stderr == "interrupted; resume it with: modelyard train --resume\n"
    assert result.stdout == ""
