"""The ``modelyard`` command: a thin door onto the library. Each command parses,
calls one library function, and prints (or emits JSON with ``--json``)."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from modelyard.bench.commands import bench as bench_command
from modelyard.choices import Split
from modelyard.cli_options import (
    Debug,
    JsonOut,
    ModelUri,
    Overrides,
    debug_requested,
    exit_interrupted,
)
from modelyard.deploy.commands import deploy as deploy_command
from modelyard.deploy.rollback_command import rollback as rollback_command
from modelyard.errors import EXIT_INTERRUPTED, EXIT_USAGE, ModelyardError, UsageError
from modelyard.export.commands import export_app
from modelyard.extras import missing_extra
from modelyard.monitor.commands import monitor_app
from modelyard.monitor.feedback_commands import feedback_app
from modelyard.promote.commands import promote as promote_command
from modelyard.train.distill_command import distill as distill_command
from modelyard.tune.commands import tune as tune_command
from modelyard.ui.commands import ui as ui_command


class _Commands(TyperGroup):
    """The ``modelyard`` group: a command that Ctrl-C stops without saying what it kept
    (every one but train, tune, distill and evaluate, which end through
    :func:`~modelyard.cli_options.exit_interrupted` themselves) still ends with a line
    and exit 130. Typer would turn the ``KeyboardInterrupt`` into a silent exit 130:
    the prompt came back with no word of what stopped."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as interrupt:
            if debug_requested(sys.argv[1:]):
                traceback.print_exception(interrupt)  # where the press landed
            exit_interrupted(str(interrupt) or "interrupted")


app = typer.Typer(
    cls=_Commands,
    name="modelyard",
    help="Train, track, register, export and score classification models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # --install-completion / --show-completion: Typer's completion for bash, zsh,
    # fish and PowerShell, completing command and option names.
    add_completion=True,
)
config_app = typer.Typer(help="Inspect the composed configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(export_app, name="export")
app.add_typer(monitor_app, name="monitor")
app.add_typer(feedback_app, name="feedback")
app.command("bench")(bench_command)
app.command("ui")(ui_command)
app.command("tune")(tune_command)
app.command("promote")(promote_command)
app.command("deploy")(deploy_command)
app.command("rollback")(rollback_command)
app.command("distill")(distill_command)


def _print_version(value: bool) -> None:
    if value:
        from modelyard import __version__

        typer.echo(f"modelyard {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Debug = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """--debug before the command name (every command also takes it after)."""


def _emit(data: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else "\n".join(lines))


@app.command()
def train(
    overrides: Overrides = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the newest interrupted run (of task=..., if given, else of any task) "
            "from its last checkpoint, with the config it started with.",
        ),
    ] = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Train a model, evaluate it, write its bundle and register it as `candidate`."""
    from modelyard.config import compose_config

    # Compose (which checks data.path) before the training stack loads: a mistake
    # fails in a second rather than after torch, Lightning and MLflow import. A
    # resumed run's config is the stored one; resume_config checks the overrides.
    cfg = None if resume else compose_config(overrides or [])
    if cfg is not None and cfg.distill.teacher:
        raise UsageError(
            f"distill.teacher={cfg.distill.teacher} is read by `modelyard distill` only; "
            "run `modelyard distill teacher=... task=...` to train a student"
        )
    from modelyard import tracking
    from modelyard.train.run import TrainingInterrupted, resume_config
    from modelyard.train.run import train as run_training

    try:
        if cfg is None:
            run_id, cfg = resume_config(overrides or [])
            result = run_training(cfg, resume=run_id)
        else:
            result = run_training(cfg)
    except TrainingInterrupted as interrupt:
        exit_interrupted(str(interrupt))  # its message says how to resume
    if result.rank != 0:
        return  # another DDP process: rank 0 prints the result
    acc = result.metrics.get("test_accuracy", float("nan"))
    f1 = result.metrics.get("test_macro_f1", float("nan"))
    alias_uri = f"models:/{result.model_name}@candidate"
    data = {
        "run_id": result.run_id,
        "experiment_id": result.experiment_id,
        "tracking_uri": result.tracking_uri,
        "model_name": result.model_name,
        "model_version": result.model_version,
        "model_uri": alias_uri if result.model_version else result.model_uri,
        "bundle": str(result.bundle_path),
        "checkpoints": str(result.checkpoint_path),
        "metrics": result.metrics,
        "resumed": result.resumed,
    }
    registered = (
        f"{result.model_name} version {result.model_version} (alias candidate): {alias_uri}"
        if result.model_version
        else f"not registered (logged as {result.model_uri})"
    )
    _emit(
        data,
        as_json,
        [
            f"test accuracy  {acc:.4f}   macro-F1 {f1:.4f}",
            f"run id         {result.run_id}" + ("  (resumed)" if result.resumed else ""),
            f"model          {registered}",
            f"bundle         {result.bundle_path}",
            f"tracking       {result.tracking_uri}",
            f"look at it     {tracking.ui_command(result.tracking_uri)}",
        ],
    )


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="The new project's folder (created if missing).")],
    task: Annotated[
        str, typer.Option("--task", help="What the model classifies: image or text.")
    ] = "image",
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="The task's and the registered model's name (default: the folder's)."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Write into a folder that is not empty; every file replaced is listed."
        ),
    ] = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Start a new model project: config, DVC pipeline, deploy files, CI, README."""
    from modelyard.scaffold import init_project

    result = init_project(folder, task=task, name=name, force=force)
    for relative in result.overwritten:
        typer.echo(f"overwrote {folder / relative}", err=True)
    lines = [f"wrote {folder / relative}" for relative in result.written]
    lines += [f"unchanged {folder / relative}" for relative in result.unchanged]
    lines += [
        "",
        f"new {result.task} project for the model {result.name}; next:",
        f"  cd {folder}   # and read README.md: put your data where config/data/ says",
        "  modelyard train",
    ]
    _emit(result.to_dict(), as_json, lines)


@config_app.command("show")
def config_show(
    overrides: Overrides = None, as_json: JsonOut = False, debug: Debug = False
) -> None:
    """Print the resolved configuration after applying overrides."""
    from modelyard.config import compose_config, to_dict, to_yaml

    cfg = compose_config(overrides or [], paths=False)  # shows; reads no data
    typer.echo(json.dumps(to_dict(cfg), indent=2) if as_json else to_yaml(cfg).rstrip())


@app.command()
def evaluate(
    model_uri: ModelUri,
    overrides: Overrides = None,
    split: Annotated[Split, typer.Option(help="Dataset split.")] = Split.test,
    log: Annotated[
        bool, typer.Option("--log/--no-log", help="Log the report as an MLflow run.")
    ] = True,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Re-evaluate a model through ONNX Runtime on a dataset split."""
    from modelyard.scoring import evaluate_model

    # The model's own task and training data unless the overrides say otherwise.
    try:
        result = evaluate_model(model_uri, overrides or [], split=str(split), log=log)
    except KeyboardInterrupt as interrupt:  # its message says what was logged, if any
        exit_interrupted(str(interrupt) or "interrupted")
    report = result.report
    data = {
        "model": result.model,
        "version": result.version,
        "run_id": result.run_id,
        **report.to_dict(),
    }
    lines = [
        f"{result.model} version {result.version or 'local'} on {split} (n={report.n})",
        f"accuracy {report.accuracy:.4f}   macro-F1 {report.macro_f1:.4f}",
        report.text.rstrip(),
    ]
    if result.run_id:
        lines.append(f"logged as MLflow run {result.run_id}")
    _emit(data, as_json, lines)


@app.command()
def inspect(
    model_uri: ModelUri,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Show a model's name, version, kind, labels, metrics and cost report."""
    from modelyard.bundle import load
    from modelyard.inspection import describe, summary_lines

    data = describe(load(model_uri))
    _emit(data, as_json, summary_lines(data))


@app.command()
def predict(
    model_uri: ModelUri,
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Image files, folders of images or .npy arrays (uint8, or floats in [0, 1] or "
            "[0, 255]); for text models .txt files (one text per line) or CSV/TSV/JSONL/Parquet "
            "tables"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write.")] = Path(
        "preds.csv"
    ),
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the --out file if it already exists.")
    ] = False,
    text_column: Annotated[
        str, typer.Option(help="Text models: the tables' text column.")
    ] = "text",
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column",
            help="Text models: a table column copied to the output to join on "
            "(default: 'id' when the table has one).",
        ),
    ] = None,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Score inputs in batch and write label, confidence and per-class probabilities.

    Each row names its input: an image's path; `file.npy\\[i]` for array index i
    (0-based, as numpy counts); `file.txt:N` for line N and `table.csv:N` for data
    row N (both 1-based: line 1 is the first line, row 1 the first row after the
    header). Unreadable inputs are skipped and listed on stderr, the rest is
    written, and the exit code is 1.
    """
    from modelyard.batch_predict import predict_to_csv
    from modelyard.errors import EXIT_REFUSED

    result = predict_to_csv(
        model_uri, inputs, out, text_column=text_column, id_column=id_column, overwrite=overwrite
    )
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    for skipped in result.skipped:
        typer.echo(f"skipped: {skipped.reason}", err=True)
    summary = f"wrote {result.rows} predictions to {out}"
    if result.skipped:
        summary += f"; skipped {len(result.skipped)} input(s), listed on stderr"
    _emit(result.to_dict(), as_json, [summary])
    if result.skipped:
        raise typer.Exit(EXIT_REFUSED)


@app.command()
def serve(
    model: Annotated[
        str, typer.Argument(help="<name>@<alias>, models:/<name>/<version> or a bundle folder")
    ],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Serve settings: max_batch_size=64 max_delay_ms=1")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 for all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
    debug: Debug = False,
) -> None:
    """Serve a model over HTTP: Open Inference Protocol v2, /v1 predict, /metrics."""
    from modelyard.serve.server import run_server
    from modelyard.serve.settings import settings_from

    settings = settings_from(overrides or [], model=model, host=host, port=port, workers=workers)
    run_server(settings)


def _os_error_line(error: OSError) -> str:
    """``No such file or directory: /proc/x.csv``, or the error as Python words it."""
    if error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}; check the path and its permissions"
    return str(error)


def _database_error(error: Exception) -> bool:
    """Whether ``error`` is SQLAlchemy's (read only when it is loaded: no import here)."""
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    return sqlalchemy_exc is not None and isinstance(error, sqlalchemy_exc.SQLAlchemyError)


def main() -> None:
    """Console entry point: user errors become one line and a non-zero exit code."""
    debug = debug_requested(sys.argv[1:])
    if not debug:
        # Library chatter (deprecations, MLflow's DB migrations) is for developers;
        # --debug shows it.
        warnings.simplefilter("ignore")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow loads
        for name in ("mlflow", "alembic", "lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        code = app(standalone_mode=False)
    except typer.BadParameter as error:
        # A value outside an option's choices, or a required option missing: one line
        # naming the valid values, as for every other user error (Typer would draw a box).
        # Typer words a refused choice "Value error, 'x' is not one of ..."; the prefix
        # says nothing to a user.
        line = " ".join(error.format_message().replace("Value error, ", "").split())
        typer.echo(f"error: {line}", err=True)
        sys.exit(error.exit_code)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    except typer.TyperException as error:
        # Click's other usage errors (unknown option, missing argument) as Typer shows them.
        from typer import rich_utils

        if str(error):  # a bare command's help was printed already; only the code is left
            rich_utils.rich_format_error(error)  # type: ignore[arg-type]  # it is a click exception
        sys.exit(getattr(error, "exit_code", EXIT_USAGE))
    except ModelyardError as error:
        if debug:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except ModuleNotFoundError as error:
        message = missing_extra(error)
        if debug or message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as error:
        # A path the command could not read or write (an --out in a missing or read-only
        # folder, a file where a folder should be): what and where, not a traceback.
        if debug:
            raise
        typer.echo(f"error: {_os_error_line(error)}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as error:
        # A database the command could not use (the prediction log's --db unreachable,
        # not a database, refused): one line, exit 2, not 1, which means "drift found".
        if debug or not _database_error(error):
            raise
        said = str(getattr(error, "orig", None) or error).strip().splitlines()
        first = said[0] if said else type(error).__name__
        typer.echo(
            f"error: cannot use the database: {first}; check the URL (--db, "
            "prediction_log_url, MLFLOW_TRACKING_URI) and that its server is up",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt as interrupt:
        # A press in a command's body ends in _Commands, one while Typer parses in its
        # silent exit 130; only one before that (finding the commands, shell completion)
        # gets here.
        typer.echo(str(interrupt) or "interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
