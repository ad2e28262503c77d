"""``modelyard bench``: a thin command over :func:`modelyard.bench.bench`.

It parses the human forms (``10s``, ``1,8,32``), calls one library function and
prints the table or ``--json``. Progress goes to stderr, so ``--json`` output on
stdout stays parseable while a long run still shows it is alive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelyard.bench.protocol import Protocol
from modelyard.bench.stats import SELF_TEST_DURATION_S, SELF_TEST_WARMUP_S
from modelyard.cli_options import Debug, JsonOut
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
    url: Annotated[
        str | None,
        typer.Argument(
            help="Server base URL, e.g. http://127.0.0.1:8000 or 127.0.0.1:8000 "
            "(not needed with --self-test)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Model name on the server (default: the one it serves)."
        ),
    ] = None,
    concurrency: Annotated[
        str, typer.Option("--concurrency", "-c", help="Concurrency levels, comma-separated.")
    ] = "1,8,32,64",
    duration: Annotated[
        str | None,
        typer.Option(
            help="Measured time per level: 10s, 500ms, 2m "
            f"(default: 10s; {SELF_TEST_DURATION_S:g}s with --self-test).",
            show_default=False,
        ),
    ] = None,
    warmup: Annotated[
        str | None,
        typer.Option(
            help=f"Unmeasured warm-up before each level (default: 1s; {SELF_TEST_WARMUP_S:g}s "
            "with --self-test).",
            show_default=False,
        ),
    ] = None,
    protocol: Annotated[
        Protocol, typer.Option(help="v2 (Open Inference Protocol) or v1 (simple API).")
    ] = Protocol.v2,
    binary: Annotated[
        bool, typer.Option("--binary", help="v2: send tensors as binary data.")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", help="Rows (instances) per request.")] = 1,
    image: Annotated[
        Path | None, typer.Option("--image", help="v1: upload this image file.")
    ] = None,
    text: Annotated[
        str | None,
        typer.Option(
            "--text",
            help="Send this text (text models; the metadata tells a text model, which gets a "
            "sample sentence without it).",
        ),
    ] = None,
    shape: Annotated[
        str | None,
        typer.Option(
            "--shape", help="Input shape without batch (C,H,W) instead of the model metadata."
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="MODELYARD_API_KEY", help="Sent as 'Authorization: Bearer'."
        ),
    ] = None,
    processes: Annotated[
        int, typer.Option("--processes", "-p", help="Generator worker processes.")
    ] = 1,
    timeout: Annotated[
        str, typer.Option(help="A request unanswered this long counts as an error.")
    ] = "30s",
    no_ceiling: Annotated[
        bool, typer.Option("--no-ceiling", help="Skip measuring the generator's own ceiling first.")
    ] = False,
    self_test: Annotated[
        bool,
        typer.Option("--self-test", help="Only measure the generator against a trivial endpoint."),
    ] = False,
    as_json: JsonOut = False,
    debug: Debug = False,
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
        result = report.bench(
            url,
            model,
            levels,
            parse_duration(duration or "10s"),
            protocol,
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
