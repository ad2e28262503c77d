"""Metric names on both sides: what a server exports, and what PromQL asks for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "modelyard.json"

# Set by the server's periodic drift check (src/modelyard/serve/monitoring.py on the
# prediction-log branch), which this branch does not have yet, so they are named here.
DRIFT_GAUGES = {"modelyard_drift_detected", "modelyard_drift_score", "modelyard_drift_p_value"}
# Series Prometheus itself writes for every target.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_NAME = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b")


def exported_names(exposition: str) -> set[str]:
    """Every series name a /metrics text can carry, including those of labelled
    metrics that have no sample yet (their # TYPE line still names them)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def referenced_names(expr: str, prefix: str = "modelyard_") -> set[str]:
    """Metric names an expression selects. Quoted label values are dropped first;
    label names and functions never start with the ``modelyard_`` prefix."""
    unquoted = _QUOTED.sub('""', expr)
    return {name for name in _NAME.findall(unquoted) if name.startswith(prefix)}


def dashboard() -> dict:  # type: ignore[type-arg]
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel and template variable."""
    board = dashboard()
    found = [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            found.append((f"${variable['name']}", inner.group(1) if inner else query))
    return found


def rule_exprs() -> list[tuple[str, str]]:
    """(alert name, PromQL) for every rule in deploy/prometheus/rules."""
    found = []
    for path in sorted((PROMETHEUS / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [
                (rule.get("alert") or rule["record"], rule["expr"]) for rule in group["rules"]
            ]
    return found


def grafana_to_promql(expr: str, rate_interval: str = "1m") -> str:
    """A dashboard query with Grafana's variables filled in, for Prometheus' API."""
    for variable, value in {
        "$__rate_interval": rate_interval,
        "$__interval": rate_interval,
        "$job": ".*",
        "$instance": ".*",
        "$model": ".*",
    }.items():
        expr = expr.replace(variable, value)
    return expr
