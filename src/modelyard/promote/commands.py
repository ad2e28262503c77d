"""``modelyard promote``: a thin command over :func:`modelyard.promote.run.promote`.

Exit codes (:mod:`modelyard.errors`): 0 promoted (or already there, or a dry run
that passed), 1 refused by the gate (aliases untouched; a refused dry run too), 2 a
usage error (unknown model, version, setting).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from modelyard.choices import PromotionTarget
from modelyard.cli_options import Debug, JsonOut
from modelyard.errors import EXIT_REFUSED


def promote(
    name: Annotated[str, typer.Argument(help="Registered model name, e.g. mnist5k-cnn.")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="Gate settings and data: promote.min_improvement=0.01 promote.split=val"
        ),
    ] = None,
    *,
    to: Annotated[PromotionTarget, typer.Option("--to", help="The alias to move.")],
    version: Annotated[
        str | None, typer.Option("--version", help="The challenger version.")
    ] = None,
    from_alias: Annotated[
        str, typer.Option("--from", help="Alias naming the challenger when --version is not given.")
    ] = "candidate",
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Move the alias even if the gate refuses (recorded as forced)."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and record the decision, but move no alias.")
    ] = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Gate a challenger against the champion on the same data; move the alias if it passes."""
    from modelyard.promote.run import promote as run_promote

    result = run_promote(
        name,
        str(to),
        version=version,
        from_alias=from_alias,
        force=force,
        dry_run=dry_run,
        overrides=overrides or [],
    )
    decision = result.decision
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif decision is None:
        typer.echo(f"{name} version {result.version} already holds @{to}; nothing to do")
    else:
        lines = [
            f"{name} v{result.version} -> @{to} "
            + (f"against champion v{result.previous}" if result.previous else "(no champion)"),
            *(f"  {'ok  ' if c.passed else 'FAIL'}  {c.detail}" for c in decision.checks),
            f"decision: {decision.outcome.upper()}: {decision.reason}",
        ]
        if result.moved:
            lines.append(f"{name}@{to} -> version {result.version}")
        elif dry_run:
            lines.append("dry run: no alias moved")
        else:
            lines.append(f"{name}@{to} left at version {result.previous or '(none)'}")
        typer.echo("\n".join(lines))
    if decision is not None and decision.outcome == "refused":
        raise typer.Exit(EXIT_REFUSED)
