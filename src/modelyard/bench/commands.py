"""``modelyard bench``: a thin command over :func:`modelyard.bench.bench`.

It parses the human forms (``10s``, ``1,8,32``), calls one library function and
prints the table or ``--json``. Progress goes to stderr, so ``--json`` output on
stdout stays parseable while a long run still shows it is alive.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from modelyard.bench.stats import SELF_TEST_DURATION_S, SELF_TEST_WARMUP_S
from modelyard.cli_options import DEBUG, JSON_OUT
from modelyard.errors import UsageError


def _progress(message: str) -> None:
    typer.echo(message, err=True)


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise UsageError(f"--shape '{text}' is not a list of positive sizes; write e.g. 1,8,8")
    return shape


def bench(
    url: str | None = typer.Argument(
        None,
        help="Server base URL, e.g. http://127.0.0.1:8000 or 127.0.0.1:8000 "
        "(not needed with --self-test).",
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model name on the server (default: the one it serves)."
    ),
    concurrency: str = typer.Option(
        "1,8,32,64", "--concurrency", "-c", help="Concurrency levels, comma-separated."
    ),
    duration: str | None = typer.Option(
        None,
        help="Measured time per level: 10s, 500ms, 2m "
        f"(default: 10s; {SELF_TEST_DURATION_S:g}s with --self-test).",
        show_default=False,
    ),
    warmup: str | None = typer.Option(
        None,
        help=f"Unmeasured warm-up before each level (default: 1s; {SELF_TEST_WARMUP_S:g}s "
        "with --self-test).",
        show_default=False,
    ),
    protocol: str = typer.Option("v2", help="v2 (Open Inference Protocol) or v1 (simple API)."),
    binary: bool = typer.Option(False, "--binary", help="v2: send tensors as binary data."),
    batch: int = typer.Option(1, "--batch", help="Rows (instances) per request."),
    image: Path | None = typer.Option(None, "--image", help="v1: upload this image file."),
    text: str | None = typer.Option(
        None,
        "--text",
        help="Send this text (text models; the metadata tells a text model, which gets a "
        "sample sentence without it).",
    ),
    shape: str | None = typer.Option(
        None, "--shape", help="Input shape without batch (C,H,W) instead of the model metadata."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="MODELYARD_API_KEY", help="Sent as 'Authorization: Bearer'."
    ),
    processes: int = typer.Option(1, "--processes", "-p", help="Generator worker processes."),
    timeout: str = typer.Option("30s", help="A request unanswered this long counts as an error."),
    no_ceiling: bool = typer.Option(
        False, "--no-ceiling", help="Skip measuring the generator's own ceiling first."
    ),
    self_test: bool = typer.Option(
        False, "--self-test", help="Only measure the generator against a trivial endpoint."
    ),
    as_json: bool = JSON_OUT,
    debug: bool = DEBUG,
) -> None:
    """Load-test a served model (perf_analyzer style): req/s, p50-p99 latency, errors."""
    from modelyard.bench import report
    from modelyard.bench.stats import parse_duration, parse_levels

    levels = parse_levels(concurrency)
    if self_test:
        result = report.self_test(
            levels,
            parse_duration(duration) if duration else SELF_TEST_DURATION_S,
            warmup_s=parse_duration(warmup, allow_zero=True) if warmup else SELF_TEST_WARMUP_S,
            processes=processes,
            progress=_progress,
        )
    else:
        if url is None:
            raise UsageError("pass the server URL, e.g. http://127.0.0.1:8000 (or --self-test)")
        if protocol not in ("v2", "v1"):
            raise UsageError(f"--protocol '{protocol}' is not one of v2, v1")
        result = report.bench(
            url,
            model,
            levels,
            parse_duration(duration or "10s"),
            protocol,  # type: ignore[arg-type]  # checked above
            warmup_s=parse_duration(warmup or "1s", allow_zero=True),
            batch=batch,
            binary=binary,
            image=image,
            text=text,
            shape=_shape(shape),
            api_key=api_key,
            processes=processes,
            timeout_s=parse_duration(timeout),
            measure_ceiling=not no_ceiling,
            progress=_progress,
        )
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.table())
