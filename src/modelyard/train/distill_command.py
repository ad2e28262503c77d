"""``modelyard distill``: a thin command over :func:`modelyard.train.distill.distill`.

Imports nothing heavy at module level: the CLI loads it on every start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli_options import Debug, JsonOut, exit_interrupted
from modelyard.config.overrides import override_key

if TYPE_CHECKING:
    from modelyard.config import Config


def distill_overrides(arguments: Sequence[str]) -> list[str]:
    """The CLI's ``teacher=<uri>`` as the config key ``distill.teacher``; others as given."""
    return [
        f"distill.{argument}" if override_key(argument) == "teacher" else argument
        for argument in arguments
    ]


def distill_config(arguments: Sequence[str]) -> Config:
    """Compose ``modelyard distill``'s arguments (``teacher=`` included) into a Config."""
    from modelyard.config import compose_config

    return compose_config(distill_overrides(arguments))


def distill(
    arguments: Annotated[
        list[str] | None,
        typer.Argument(
            help="teacher=<name>@<alias>|models:/<name>/<version>|<bundle folder>, then "
            "the student's overrides: task=mnist5k model=cnn_small distill.temperature=4"
        ),
    ] = None,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Train a student on a registered teacher's logits (temperature-scaled KL plus
    cross-entropy); bundle and register it as `candidate`, recording the teacher."""
    # Compose first: a bad key or student fails before torch and MLflow load.
    cfg = distill_config(arguments or [])
    from modelyard.train.distill import MANIFEST_KEY
    from modelyard.train.distill import distill as run_distill
    from modelyard.train.run import TrainingInterrupted

    try:
        result = run_distill(cfg)
    except TrainingInterrupted as interrupt:
        exit_interrupted(str(interrupt))
    if result.rank != 0:
        return
    from modelyard.bundle import read_bundle

    teacher = read_bundle(result.bundle_path).manifest[MANIFEST_KEY]
    alias_uri = f"models:/{result.model_name}@candidate"
    model_uri = alias_uri if result.model_version else result.model_uri
    data = {
        "run_id": result.run_id,
        "model_name": result.model_name,
        "model_version": result.model_version,
        "model_uri": model_uri,
        "bundle": str(result.bundle_path),
        "metrics": result.metrics,
        "teacher": teacher,
        "fit_seconds": result.fit_seconds,
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    acc = result.metrics.get("test_accuracy", float("nan"))
    version = f" version {teacher['version']}" if teacher["version"] else ""
    typer.echo(
        "\n".join(
            [
                f"test accuracy  {acc:.4f}",
                f"teacher        {teacher['name']}{version} ({teacher['uri']})",
                f"run id         {result.run_id}",
                f"model          {model_uri}",
                f"bundle         {result.bundle_path}",
            ]
        )
    )
