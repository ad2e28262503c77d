"""The drift report's plots (matplotlib, PNG) and its HTML page."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.monitor.drift import WindowData
from modelyard.monitor.report import REPORT_FILE, Check, Verdict, describe_model, describe_window

_REFERENCE, _WINDOW, _DRIFT = "#4c72b0", "#dd8452", "#c44e52"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window (servers, cron, CI)
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, folder: Path, name: str) -> str:
    """Write one figure as a PNG beside the verdict and free it; the file's name."""
    fig.tight_layout()
    fig.savefig(folder / name, dpi=90)
    plt.close(fig)
    return name


def _title(check: Check) -> tuple[str, str]:
    psi = "" if check.psi is None else f", PSI {check.psi:.3f}"
    colour = _DRIFT if check.drift else "black"
    return f"{check.name}\np={check.p_value:.2g}{psi}" + (" DRIFT" if check.drift else ""), colour


def plot_distributions(
    folder: Path, profile: dict[str, Any], window: WindowData, checks: list[Check]
) -> str | None:
    """Reference vs window histograms of every KS-tested summary and the confidence."""
    ks = [c for c in checks if c.kind == "ks"]
    if not ks:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(ks), figsize=(3.6 * len(ks), 3.2), squeeze=False)
    for ax, check in zip(axes[0], ks, strict=True):
        if check.name == "confidence":
            reference = profile["predictions"]["confidence"]["sample"]
            values = window.confidences
        else:
            reference = profile["features"][check.name]["sample"]
            values = window.summaries[check.name]
        values = values[np.isfinite(values)]
        both = np.concatenate([np.asarray(reference, dtype=np.float64), values])
        edges = np.histogram_bin_edges(both[np.isfinite(both)], bins=30)
        ax.hist(
            reference, bins=edges, density=True, alpha=0.55, color=_REFERENCE, label="reference"
        )
        ax.hist(values, bins=edges, density=True, alpha=0.55, color=_WINDOW, label="window")
        title, colour = _title(check)
        ax.set_title(title, fontsize=9, color=colour)
    axes[0][0].legend(fontsize=8)
    return _save(plt, fig, folder, "distributions.png")


def plot_labels(
    folder: Path, profile: dict[str, Any], window: WindowData, checks: list[Check]
) -> str | None:
    check = next((c for c in checks if c.name == "labels"), None)
    if check is None:
        return None
    plt = _pyplot()
    reference: dict[str, float] = profile["predictions"]["label_distribution"]
    names = list(reference) + sorted(set(window.labels) - set(reference))
    counts = {n: 0 for n in names}
    for label in window.labels:
        counts[label] += 1
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(names) + 2), 3.2))
    ax.bar(
        x - 0.2, [reference.get(n, 0.0) for n in names], 0.4, color=_REFERENCE, label="reference"
    )
    ax.bar(x + 0.2, [counts[n] / len(window) for n in names], 0.4, color=_WINDOW, label="window")
    ax.set_xticks(x, names, rotation=45 if len(names) > 12 else 0, fontsize=8)
    ax.set_ylabel("share of predictions")
    title, colour = _title(check)
    ax.set_title(title.replace("\n", "  "), fontsize=9, color=colour)
    ax.legend(fontsize=8)
    return _save(plt, fig, folder, "labels.png")


def plot_embedding(
    folder: Path, profile: dict[str, Any], window: WindowData, checks: list[Check]
) -> str | None:
    check = next((c for c in checks if c.name == "embedding"), None)
    if check is None or window.projection.shape[1] < 2:
        return None
    plt = _pyplot()
    reference = np.asarray(profile["embedding"]["projected_sample"], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(4.4, 4.0))
    ax.scatter(
        reference[:, 0], reference[:, 1], s=5, alpha=0.35, color=_REFERENCE, label="reference"
    )
    ax.scatter(
        window.projection[:, 0],
        window.projection[:, 1],
        s=7,
        alpha=0.6,
        color=_WINDOW,
        label="window",
    )
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    title, colour = _title(check)
    ax.set_title(title.replace("\n", "  "), fontsize=9, color=colour)
    ax.legend(fontsize=8, markerscale=2)
    return _save(plt, fig, folder, "embedding.png")


def write_plots(
    folder: Path, profile: dict[str, Any], window: WindowData, checks: list[Check]
) -> list[str]:
    """Write every applicable plot into ``folder``; returns their file names."""
    folder.mkdir(parents=True, exist_ok=True)
    made = [
        plot(folder, profile, window, checks)
        for plot in (plot_distributions, plot_labels, plot_embedding)
    ]
    return [name for name in made if name is not None]


def write_html(folder: Path, verdict: Verdict) -> Path:
    """A self-contained page (plots beside it) that says the verdict first."""
    e = html.escape
    rows = "\n".join(
        f"<tr class='{'drift' if c.drift else ''}'><td>{e(c.name)}</td><td>{e(c.kind)}</td>"
        f"<td>{c.statistic:.4g}</td><td>{c.p_value:.3g}</td><td>{c.p_threshold:.3g}</td>"
        f"<td>{'' if c.psi is None else f'{c.psi:.3f}'}</td>"
        f"<td>{'drift' if c.drift else 'ok'}</td></tr>"
        for c in verdict.checks
    )
    images = "\n".join(f"<p><img src='{e(p)}' alt='{e(p)}'></p>" for p in verdict.plots)
    headline = "DRIFT DETECTED" if verdict.drift else "no drift"
    checked = e(describe_model(verdict.model, verdict.version))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Drift: {checked}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
tr.drift td {{ background: #fbe3e4; }} .verdict {{ font-size: 1.4em; }}
.drift-yes {{ color: {_DRIFT}; }}
</style></head><body>
<h1>{checked}</h1>
<p class="verdict {"drift-yes" if verdict.drift else ""}">{headline}</p>
<p>{e(describe_window(verdict.window))}; checked {e(verdict.created)} against
{verdict.reference_samples} reference rows. A check signals drift when its p-value is below
its Bonferroni level (family-wise false-alarm rate {verdict.alpha:g}) and its PSI is at
least {verdict.min_psi:g}.</p>
<table><tr><th>check</th><th>test</th><th>statistic</th><th>p-value</th><th>level</th>
<th>PSI</th><th>result</th></tr>
{rows}
</table>
{images}
</body></html>
"""
    path = folder / REPORT_FILE
    path.write_text(page)
    return path
