"""The compare report: ``compare.json`` and a self-contained ``report.html`` under
``$MODELYARD_HOME/monitor/<model>/compare/<UTC time>/``, beside the drift reports."""

from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone
from pathlib import Path

from modelyard.monitor.compare import Comparison
from modelyard.monitor.report import REPORT_FILE, TIMESTAMP_FORMAT, iso_utc, monitor_dir

COMPARE_FILE = "compare.json"


def default_compare_dir(model: str, created: datetime) -> Path:
    return monitor_dir(model) / "compare" / created.strftime(TIMESTAMP_FORMAT)


def _number(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def write_compare(comparison: Comparison, folder: Path | None = None) -> Path:
    """Write the JSON and the HTML page; returns the folder."""
    folder = folder or default_compare_dir(comparison.model, datetime.now(timezone.utc))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / COMPARE_FILE).write_text(json.dumps(comparison.to_dict(), indent=2))
    (folder / REPORT_FILE).write_text(_page(comparison))
    return folder


def _page(c: Comparison) -> str:
    e = html.escape
    low, high = c.agreement_ci
    head = "".join(f"<th>{e(label)}</th>" for label in c.labels)
    body = "".join(
        f"<tr><th>{e(label)}</th>"
        + "".join(
            f'<td class="{"same" if i == j else ("diff" if n else "")}">{n}</td>'
            for j, n in enumerate(row)
        )
        + "</tr>"
        for i, (label, row) in enumerate(zip(c.labels, c.matrix, strict=True))
    )
    versions = (c.baseline, c.challenger)
    latency = "".join(
        f"<tr><td>{e(v)}</td><td>{c.latency[v].n}</td><td>{_number(c.latency[v].p50_ms, 2)}</td>"
        f"<td>{_number(c.latency[v].p95_ms, 2)}</td></tr>"
        for v in versions
    )
    accuracy = (
        "".join(
            f"<tr><td>{e(v)}</td><td>{s.n}</td><td>{_number(s.accuracy)}</td>"
            f"<td>{_number(s.macro_f1)}</td></tr>"
            for v, s in c.accuracy.items()
        )
        or '<tr><td colspan="4">no feedback labels in the window</td></tr>'
    )
    title = f"{c.model}: version {c.challenger} against {c.baseline}"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Compare: {e(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
.same{{background:#e6f4ea}}.diff{{background:#fce8e6}}</style></head><body>
<h1>{e(title)}</h1>
<p>{iso_utc(c.since)} to {iso_utc(c.until)} (UTC).</p>
<h2>Agreement</h2>
<p><b>{_number(c.agreement)}</b> over {c.paired} requests both versions answered
(95% Wilson interval {_number(low)} to {_number(high)}).</p>
<h2>Labels: baseline {e(c.baseline)} (rows) against challenger {e(c.challenger)} (columns)</h2>
<table><tr><th></th>{head}</tr>{body}</table>
<h2>Latency (ms)</h2>
<table><tr><th>version</th><th>records</th><th>p50</th><th>p95</th></tr>{latency}</table>
<p>Challenger p50 minus baseline p50: {_number(c.p50_difference_ms, 2)} ms. A shadow's latency
is its model call alone; the main version's is the whole request.</p>
<h2>Accuracy on feedback labels</h2>
<table><tr><th>version</th><th>labelled</th><th>accuracy</th><th>macro-F1</th></tr>{accuracy}</table>
</body></html>
"""
