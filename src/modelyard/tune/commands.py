"""``modelyard tune``: a thin command over :func:`modelyard.tune.study.tune`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli_options import Debug, JsonOut, exit_interrupted
from modelyard.errors import ConfigError, UsageError


def read_space(path: Path) -> dict[str, Any]:
    """A search space file: the entries of ``tune.space`` (optionally under ``space:``)."""
    import yaml

    if not path.is_file():
        raise UsageError(f"search space file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if isinstance(data, dict) and set(data) == {"space"}:
        data = data["space"]
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must map config keys to distributions, e.g. "
            "'train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}'"
        )
    return data


def continue_command(
    overrides: list[str], trials: int, study: str, storage: str | None, space: Path | None
) -> str:
    """The ``modelyard tune`` command that continues ``study`` (a password in the
    storage URL is shown as ***)."""
    from modelyard.tune.storage import safe_url

    words = ["modelyard", "tune", *overrides, "--trials", str(trials), "--study", study]
    if storage:
        words += ["--storage", safe_url(storage)]
    if space:
        words += ["--space", str(space)]
    return shlex.join(words)


def tune(
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="The training overrides every trial starts from: task=digits train=fast"
        ),
    ] = None,
    *,
    trials: Annotated[
        int,
        typer.Option("--trials", "-n", help="The study's total trials, shared by all its workers."),
    ],
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Optuna storage URL; default sqlite under MODELYARD_HOME. "
            "postgresql://... lets workers on several machines share one study.",
        ),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option(
            "--study", help="Study name; an existing one is joined. Default: <task>-<time>."
        ),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Start no new trial after this many seconds.")
    ] = None,
    space: Annotated[
        Path | None,
        typer.Option(
            "--space",
            help="YAML file whose entries replace tune.space, e.g. "
            "'train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}'.",
        ),
    ] = None,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Search hyperparameters (tune.space) with Optuna; register the best as `candidate`."""
    from modelyard.config import compose_config

    # The config (and data.path) is checked before torch, Lightning and MLflow load,
    # so a mistake fails in a second. A missing extra is named by the CLI's main().
    compose_config(overrides or [])
    from modelyard.tune.study import TuneInterrupted
    from modelyard.tune.study import tune as run_tune

    try:
        result = run_tune(
            overrides or [],
            trials,
            storage=storage,
            study_name=study,
            timeout=timeout,
            space=read_space(space) if space else None,
        )
    except TuneInterrupted as interrupt:
        command = continue_command(overrides or [], trials, interrupt.study, storage, space)
        exit_interrupted(f"interrupted; {interrupt.outcome}; continue the study with: {command}")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    counts = ", ".join(f"{n} {state}" for state, n in result.counts().items())
    lines = [
        f"study          {result.study} ({result.storage})",
        f"trials         {len(result.trials)} of {result.budget}: {counts}; "
        f"{len(result.ran_here)} ran here",
        f"mlflow parent  {result.parent_run_id}",
    ]
    if result.best is None:
        lines.append("best           none completed; nothing registered")
    else:
        best = result.best
        params = " ".join(f"{k}={v}" for k, v in best.params.items())
        lines += [
            f"best           trial {best.number}: {result.metric} {best.value:.4f}  {params}",
            f"best run       {best.run_id}",
        ]
        if result.model_version:
            lines.append(
                f"registered     {result.model_name} version {result.model_version} "
                f"(alias candidate)"
            )
    typer.echo("\n".join(lines))
