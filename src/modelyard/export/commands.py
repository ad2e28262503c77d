"""``modelyard export ...``: thin commands over :mod:`modelyard.export.triton` and
:mod:`modelyard.export.quantize`. Each parses, calls one library function, prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.choices import Split
from modelyard.cli_options import Debug, JsonOut, ModelUri
from modelyard.errors import ExportError
from modelyard.export.triton import InstanceKind

export_app = typer.Typer(
    help="Export a model: Triton model repository, bare ONNX, INT8 bundle.",
    no_args_is_help=True,
)

Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace what is already at --out.")]


def _emit(data: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else "\n".join(lines))


@export_app.command("triton")
def triton(
    model_uri: ModelUri,
    out: Annotated[Path, typer.Option("--out", "-o", help="Model repository.")] = Path(
        "model_repository"
    ),
    max_batch_size: Annotated[int, typer.Option(help="Largest batch Triton may form.")] = 64,
    instances: Annotated[int, typer.Option(help="Model instances (ONNX Runtime sessions).")] = 1,
    kind: Annotated[InstanceKind, typer.Option(help="Instance kind.")] = InstanceKind.KIND_CPU,
    overwrite: Overwrite = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Write a Triton model repository entry: config.pbtxt, labels and <version>/model.onnx."""
    from modelyard import bundle as bundle_io
    from modelyard.export.triton import write_triton_repository

    loaded = bundle_io.load(model_uri)
    folder = write_triton_repository(
        loaded,
        out,
        max_batch_size=max_batch_size,
        instances=instances,
        kind=str(kind),
        overwrite=overwrite,
    )
    files = sorted(str(p.relative_to(out)) for p in folder.rglob("*") if p.is_file())
    _emit(
        {"model": loaded.name, "version": loaded.version, "folder": str(folder), "files": files},
        as_json,
        [
            f"wrote Triton model '{loaded.name}' to {folder}",
            *(f"  {f}" for f in files),
            f"serve it with: tritonserver --model-repository {out.resolve()}",
        ],
    )


@export_app.command("onnx")
def onnx(
    model_uri: ModelUri,
    *,
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
    overwrite: Overwrite = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Copy the ONNX graph out, with a .json beside it (labels, preprocessing, shapes)."""
    from modelyard import bundle as bundle_io
    from modelyard.export.triton import write_onnx

    path = write_onnx(bundle_io.load(model_uri), out, overwrite=overwrite)
    sidecar = path.with_suffix(".json")
    _emit(
        {"onnx": str(path), "sidecar": str(sidecar)},
        as_json,
        [f"wrote {path} and {sidecar}"],
    )


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.2f} MiB"


@export_app.command("quantize")
def quantize(
    model_uri: ModelUri,
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="Overrides for the dataset measured on; default: the model's task"),
    ] = None,
    *,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the INT8 bundle.")],
    split: Annotated[Split, typer.Option(help="Dataset split to measure on.")] = Split.test,
    matmul_only: Annotated[
        bool,
        typer.Option(
            "--matmul-only",
            help="Quantize only MatMul/Gemm: a smaller gain in size, none lost in speed.",
        ),
    ] = False,
    static: Annotated[
        bool,
        typer.Option(
            "--static",
            help="Static INT8: activation scales calibrated on training images, QDQ graph, "
            "per-channel 7-bit int8 weights (fast where the CPU has AMX or VNNI; "
            "7 bits keep AVX2-only CPUs from saturating).",
        ),
    ] = False,
    calibration_examples: Annotated[
        int,
        typer.Option(
            "--calibration-examples", help="With --static: training images calibrated on."
        ),
    ] = 512,
    overwrite: Overwrite = False,
    as_json: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Write an INT8 bundle (dynamic, or --static) and compare it with the float32 one.

    Prints why when INT8 is not faster than float32 at batch 32 on this CPU."""
    from modelyard.export.quantize import MATMUL_ONLY, quantize_model

    result = quantize_model(
        model_uri,
        out,
        overrides or [],
        split=str(split),
        op_types=MATMUL_ONLY if matmul_only else None,
        overwrite=overwrite,
        static=static,
        calibration_examples=calibration_examples,
    )
    r = result.report
    q = result.bundle.fields.quantization
    if q is None:  # quantize_from_config always records how it quantized
        raise ExportError(f"{result.bundle.path} records no quantization")
    ops = q.op_types if isinstance(q.op_types, str) else "/".join(q.op_types)
    if q.fallback:
        ops += " (ConvInteger cannot run on this ONNX Runtime)"
    hint: list[str] = []
    if r.latency_int8_ms > r.latency_fp32_ms and q.op_types == "all":
        hint = [
            "INT8 is slower here: ONNX Runtime's CPU ConvInteger has no fast kernel; "
            "--matmul-only keeps float32 speed"
        ]
    elif q.speed_verdict and q.method == "static":
        hint = [q.speed_verdict]
    if q.method == "static":
        how = (
            f"static quantization (QDQ, per-channel 7-bit int8 weights, uint8 activations "
            f"calibrated on {q.calibration_examples} training images), ops: {ops}"
        )
    else:
        how = f"dynamic quantization, int8 weights, ops quantized: {ops}"
    _emit(
        {"bundle": str(result.bundle.path), "quantization": dict(q.record), **r.to_dict()},
        as_json,
        [
            f"INT8 bundle of {result.bundle.name} written to {result.bundle.path}",
            f"  {how}",
            f"  measured on {r.cpu or 'this CPU'} ({', '.join(r.extensions) or 'no AVX2'})",
            f"{'':30}{'float32':>12}{'int8':>12}",
            f"{f'accuracy ({r.split}, n={r.n})':30}{r.accuracy_fp32:>12.4f}"
            f"{r.accuracy_int8:>12.4f}   drop {r.accuracy_drop:+.4f}",
            f"{'argmax agreement':30}{'':>12}{r.argmax_agreement:>12.4f}",
            f"{'model size':30}{_size(r.size_fp32_bytes):>12}{_size(r.size_int8_bytes):>12}"
            f"   {r.size_int8_bytes / r.size_fp32_bytes:.2f}x",
            f"{f'latency, batch {r.latency_batch}, 1 thread':30}"
            f"{r.latency_fp32_ms:>9.3f} ms{r.latency_int8_ms:>9.3f} ms"
            f"   {r.latency_fp32_ms / r.latency_int8_ms:.2f}x speed-up",
            *hint,
        ],
    )
