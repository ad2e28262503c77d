"""``modelyard inspect``: what a bundle is, how well it scored and what it costs.

Reads bundle.json only (no torch, no onnx): the metrics recorded at training and
the cost report written at export (:mod:`modelyard.export.cost`).
"""

from __future__ import annotations

import re
from typing import Any

from modelyard.bundle import Bundle
from modelyard.export.cpu import named_extensions

_DETAIL = re.compile(r"_(f1|n|accuracy)_")
"""Per-class and per-length-bucket metrics (``test_f1_3``): in --json, not in the summary."""


def describe(bundle: Bundle) -> dict[str, Any]:
    """The bundle's identity, metrics and cost report (None when it has none)."""
    return {
        "name": bundle.name,
        "version": bundle.version,
        "source": bundle.source_uri,
        "task": bundle.task,
        "kind": bundle.kind,
        "labels": list(bundle.labels),
        "metrics": bundle.metrics,
        "cost": dict(cost.record) if (cost := bundle.fields.cost) else None,
    }


def _count(value: float) -> str:
    """13706 -> '13.7 k', 29_000_000 -> '29.0 M' (exact figures are in --json)."""
    for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.1f} {unit}"
    return f"{value:.0f}"


def cost_lines(cost: dict[str, Any] | None) -> list[str]:
    if not cost:
        return ["cost      not recorded (exported before cost reports; re-train to add one)"]
    found = cost.get("machine") or {}
    flags = found.get("cpu_flags") or []
    vector = named_extensions(flags, found.get("amx_enabled"))
    return [
        f"cost      {_count(cost['parameters'])} parameters, "
        f"{_count(cost['macs_per_example'])} multiply-adds per example, "
        f"{cost['size_bytes'] / 1e6:.2f} MB",
        f"latency   {cost['latency_ms_batch1']:.3f} ms at batch 1, "
        f"{cost['latency_ms_per_example_batch32']:.3f} ms per example at batch 32 "
        "(ONNX Runtime, 1 thread)",
        f"measured  on {found.get('cpu', 'an unrecorded CPU')}"
        + (f" ({', '.join(vector)})" if vector else " (no AVX2)" if flags else ""),
    ]


def summary_lines(data: dict[str, Any]) -> list[str]:
    version = data["version"] or "local"
    metrics = data["metrics"]
    shown = {k: v for k, v in sorted(metrics.items()) if not _DETAIL.search(k)}
    figures = [f"{k} {v:.4f}" for k, v in shown.items()]
    rows = ["  ".join(figures[i : i + 3]) for i in range(0, len(figures), 3)] or ["none"]
    lines = [
        f"{data['name']} version {version} ({data['kind']}, task {data['task']})",
        f"labels    {', '.join(data['labels'])}",
        *(f"{'metrics' if i == 0 else '':<10}{row}" for i, row in enumerate(rows)),
    ]
    if len(shown) < len(metrics):
        lines.append(f"          (+{len(metrics) - len(shown)} per-class figures in --json)")
    return lines + cost_lines(data["cost"])
