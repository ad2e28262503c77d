"""``modelyard monitor ...``: thin commands over :mod:`modelyard.monitor.check`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli_options import Debug, JsonOut, PredictionLogDb
from modelyard.errors import EXIT_REFUSED, UsageError
from modelyard.monitor.drift import DriftConfig
from modelyard.monitor.report import iso_utc

monitor_app = typer.Typer(
    help="Watch a served model: drift of its traffic against the training reference.",
    no_args_is_help=True,
)

EXIT_DRIFT = EXIT_REFUSED
"""Exit status when drift is found (0: none; 2: a user error, as for every command)."""

_DRIFT_DEFAULTS = DriftConfig()
"""What ``--alpha`` and ``--min-psi`` default to: the checks' own defaults."""


@monitor_app.command("drift")
def drift(
    model: Annotated[
        str,
        typer.Argument(
            help="<name>@<alias>, models:/<name>/<version>, a bundle folder, or a bare model "
            "name (the version of its newest logged record)"
        ),
    ],
    since: Annotated[
        str | None, typer.Option("--since", help="Window: the last 30m, 1h, 2d, ...")
    ] = None,
    last: Annotated[
        int | None,
        typer.Option("--last", help="Window: the newest N records (default 1000 without --since)."),
    ] = None,
    db: PredictionLogDb = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Report folder; default $MODELYARD_HOME/monitor/<model>/reports/<UTC time>/",
        ),
    ] = None,
    alpha: Annotated[
        float, typer.Option(help="Family-wise false-alarm rate (Bonferroni over the checks).")
    ] = _DRIFT_DEFAULTS.alpha,
    min_psi: Annotated[
        float, typer.Option("--min-psi", help="Smallest PSI that counts as drift.")
    ] = _DRIFT_DEFAULTS.min_psi,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Test the logged traffic against the bundle's reference profile; exit 1 on drift."""
    from modelyard.monitor.check import check_drift

    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha}")
    run = check_drift(
        model,
        since=since,
        last=last,
        db_url=db,
        out=out,
        config=DriftConfig(alpha=alpha, min_psi=min_psi),
    )
    verdict = run.verdict
    if as_json:
        typer.echo(json.dumps({**verdict.to_dict(), "report": str(run.folder)}, indent=2))
    else:
        typer.echo(
            f"{verdict.model} version {verdict.version}: {verdict.window.records} records, "
            + ("DRIFT" if verdict.drift else "no drift")
        )
        for check in verdict.checks:
            psi = "" if check.psi is None else f"  PSI {check.psi:.3f}"
            flag = "  <- drift" if check.drift else ""
            typer.echo(
                f"  {check.name:<16} {check.kind:<4} stat {check.statistic:9.4g}  "
                f"p {check.p_value:9.3g} (level {check.p_threshold:.2g}){psi}{flag}"
            )
        typer.echo(f"report           {run.folder / 'report.html'}")
    if verdict.drift:
        raise typer.Exit(EXIT_DRIFT)


@monitor_app.command("performance")
def performance(
    model: Annotated[str, typer.Argument(help="Model name, as logged.")],
    since: Annotated[str, typer.Option("--since", help="Window: the last 30m, 1h, 1d, ...")] = "1d",
    every: Annotated[
        str | None,
        typer.Option("--every", help="Length of each time window; default a quarter of --since."),
    ] = None,
    db: PredictionLogDb = None,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Accuracy, macro-F1 and per-class recall of labelled predictions, per version."""
    from modelyard.monitor.performance import performance as measure

    result = measure(model, since=since, every=every, db_url=db)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    if not result.by_version:
        typer.echo(f"{model}: no labelled predictions in the last {since}")
        return
    for version, scores in result.by_version.items():
        recall = "  ".join(f"{c}:{r:.2f}" for c, r in scores.recall.items())
        typer.echo(
            f"{model} version {version}: {scores.n} labelled, accuracy {scores.accuracy:.3f}, "
            f"macro-F1 {scores.macro_f1:.3f}"
        )
        typer.echo(f"  recall  {recall}")
    for window in result.windows:
        start, end = iso_utc(window.start), iso_utc(window.end)
        s = window.scores
        typer.echo(f"  {start} .. {end}  v{window.version}  n={s.n}  accuracy {s.accuracy:.3f}")


@monitor_app.command("compare")
def compare(
    model: Annotated[str, typer.Argument(help="Model name, as logged.")],
    since: Annotated[str, typer.Option("--since", help="Window: the last 30m, 1h, 1d, ...")] = "1h",
    versions: Annotated[
        str | None,
        typer.Option(
            "--versions",
            help="BASELINE,CHALLENGER; default the two versions with the most records.",
        ),
    ] = None,
    db: PredictionLogDb = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Report folder; default $MODELYARD_HOME/monitor/<model>/compare/<UTC time>/",
        ),
    ] = None,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Two served versions side by side: agreement, disagreements, latency, accuracy."""
    from modelyard.monitor.compare import compare as run_compare
    from modelyard.monitor.compare_report import write_compare

    pair = None
    if versions is not None:
        parts = [v.strip() for v in versions.split(",")]
        if len(parts) != 2 or not all(parts):
            raise UsageError(f"--versions takes BASELINE,CHALLENGER (e.g. 3,4), got {versions}")
        pair = (parts[0], parts[1])
    result = run_compare(model, since=since, db_url=db, versions=pair)
    folder = write_compare(result, out)
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "report": str(folder)}, indent=2))
        return
    low, high = result.agreement_ci
    typer.echo(
        f"{model}: version {result.challenger} against {result.baseline}, "
        f"{result.paired} requests both answered"
    )
    typer.echo(f"  agreement  {result.agreement:.3f} (95% CI {low:.3f} to {high:.3f})")
    for a, b, count in result.disagreements()[:10]:
        typer.echo(f"  {result.baseline}:{a} -> {result.challenger}:{b}  {count}")
    for version, lat in result.latency.items():
        typer.echo(f"  latency v{version}  p50 {lat.p50_ms:.2f} ms  p95 {lat.p95_ms:.2f} ms")
    for version, scores in result.accuracy.items():
        typer.echo(f"  accuracy v{version}  {scores.accuracy:.3f} over {scores.n} labels")
    typer.echo(f"report           {folder / 'report.html'}")
