"""``modelyard deploy``: a thin command over :func:`modelyard.deploy.run.deploy`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli_options import Debug, JsonOut


def deploy(
    spec: Annotated[
        Path, typer.Argument(help="Deployment spec, e.g. deploy/models/mnist5k-cnn.yaml")
    ],
    env: Annotated[
        str, typer.Option("--env", help="Environment in the spec: staging or production.")
    ],
    version: Annotated[
        str | None,
        typer.Option(
            "--version", help="Version to deploy; default the newest that passed the gate."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate the spec and check the gate; move nothing.")
    ] = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Validate a deploy spec and move the environment's alias to a gated version."""
    from modelyard.deploy.run import deploy as run_deploy

    result = run_deploy(spec, env, version=version, dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    target = f"{result.model}@{result.alias}"
    if result.moved:
        action = f"{target} -> version {result.version} (was {result.previous or 'unset'})"
    elif result.previous == result.version:
        action = f"{target} already at version {result.version}; nothing to move"
    else:
        action = f"dry run: {target} would move to version {result.version}"
    env_spec = result.spec.environments[env]
    typer.echo(
        "\n".join(
            [
                action,
                f"gate           {result.gate} for {env}",
                f"replicas       {env_spec.replicas}  (cpu {result.spec.resources.cpu}, "
                f"memory {result.spec.resources.memory})",
                f"servers        {result.serve_command}  (they pick the alias up on their "
                "next poll)",
            ]
        )
    )
