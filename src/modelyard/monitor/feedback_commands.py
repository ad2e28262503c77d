"""``modelyard feedback import``: true labels from a CSV file into the prediction log."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli_options import Debug, JsonOut, PredictionLogDb

feedback_app = typer.Typer(
    help="Feedback labels: the true label of served requests, for live accuracy.",
    no_args_is_help=True,
)


def read_labels_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV with the columns ``id`` and ``label`` (a header line first)."""
    from modelyard.errors import DataError

    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a CSV with the columns id,label")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"id", "label"} <= set(reader.fieldnames):
                raise DataError(
                    f"{path}: the header must name the columns id and label "
                    f"(found {', '.join(reader.fieldnames or []) or 'nothing'})"
                )
            return [{"id": row["id"] or "", "label": row["label"] or ""} for row in reader]
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: not a readable CSV file ({error})") from None


@feedback_app.command("import")
def import_labels(
    path: Annotated[Path, typer.Argument(help="CSV file with the columns id,label")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name the labels are for.")],
    db: PredictionLogDb = None,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Store labels for logged requests; unknown ids or labels store nothing (exit 2)."""
    from modelyard.monitor.feedback import parse_labels, record_feedback
    from modelyard.monitor.labels import model_labels
    from modelyard.monitor.logstore import create_log_engine

    labels = parse_labels(read_labels_csv(path))
    engine = create_log_engine(db)
    try:
        stored = record_feedback(engine, model, labels, model_labels(engine, model))
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps({"model": model, "stored": stored}))
    else:
        typer.echo(f"{model}: stored {stored} labels from {path}")
