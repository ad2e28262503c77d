"""``modelyard rollback``: move an environment's alias back to the version it held
before (:func:`modelyard.deploy.history.rollback`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from modelyard.cli_options import Debug, JsonOut


def rollback(
    name: Annotated[str, typer.Argument(help="Registered model name, e.g. digits-cnn.")],
    env: Annotated[
        str,
        typer.Option(
            "--env", help="The environment's alias to move back: production, staging, ..."
        ),
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why, recorded as a tag on the version left.")
    ] = "no reason given",
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Move NAME@ENV back to its previous version; servers follow within one poll."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from modelyard import tracking
    from modelyard.deploy.history import rollback as run_rollback
    from modelyard.errors import RegistryError
    from modelyard.registry import resolve_version

    tracking.configure()
    resolve_version(name, None, None)  # a clear error for an unknown model
    client = MlflowClient()
    try:
        current = str(client.get_model_version_by_alias(name, env).version)
    except MlflowException:
        raise RegistryError(
            f"{name} has no alias '{env}'; nothing to roll back (check --env)"
        ) from None
    done = run_rollback(client, name, env, current, reason)
    if as_json:
        typer.echo(json.dumps(done.to_dict(), indent=2))
    else:
        typer.echo(
            f"{name}@{env} -> version {done.version} (was {done.rolled_back}); "
            f"reason recorded on version {done.rolled_back}: {reason}"
        )
