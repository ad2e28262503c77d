"""The options every ``modelyard`` command shares, declared once.

``--debug`` is accepted by every command (and before the command name); ``--json``
by every command that prints a result. Declare them as parameters::

    def drift(..., as_json: JsonOut = False, debug: Debug = False) -> None:

``main()`` in :mod:`modelyard.cli` looks for ``--debug`` in ``sys.argv`` before
parsing, to silence library warnings unless asked; the option's callback also sets
``MODELYARD_DEBUG`` so the traceback decision holds when a command runs through
Typer directly (tests, ``CliRunner``).
"""

from __future__ import annotations

import os
from typing import Annotated, NoReturn

import typer

from modelyard.errors import EXIT_INTERRUPTED

DEBUG_ENV = "MODELYARD_DEBUG"


def _enable_debug(value: bool) -> bool:
    if value:
        os.environ[DEBUG_ENV] = "1"
    return value


def debug_requested(argv: list[str]) -> bool:
    """``--debug`` anywhere on the command line (before a ``--``), or MODELYARD_DEBUG set."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--debug" in options or bool(os.environ.get(DEBUG_ENV))


def exit_interrupted(message: str) -> NoReturn:
    """End a command that Ctrl-C stopped: ``message`` (what was kept, and the command that
    resumes or continues it) on stderr, exit status 130. Typer would turn the
    KeyboardInterrupt into a silent exit 130."""
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_INTERRUPTED) from None


PredictionLogDb = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Prediction log URL (sqlite:///... or postgresql://...); default: "
        "$MODELYARD_PREDICTION_LOG or $MODELYARD_HOME/predictions.db",
    ),
]
"""The prediction log the monitor and feedback commands read."""
JsonOut = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
"""``--json``: the parameter type of every command that prints a result (default False)."""
Debug = Annotated[
    bool,
    typer.Option("--debug", help="Show tracebacks and library warnings.", callback=_enable_debug),
]
"""``--debug``: the parameter type of every command (default False)."""
ModelUri = Annotated[
    str, typer.Argument(help="models:/<name>@<alias>, <name>@<alias> or a bundle folder")
]
"""The model a command reads: a registry reference or a bundle folder (required)."""
Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Hydra-style overrides: task=mnist5k train.max_epochs=5"),
]
"""Config overrides after the command's own arguments (default None: none)."""
