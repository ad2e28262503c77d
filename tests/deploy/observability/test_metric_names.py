"""The name extraction the staleness checks rely on must itself be right."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from tests.deploy.observability.metric_names import (
    exported_names,
    grafana_to_promql,
    referenced_names,
)


def test_exported_names_include_labelled_metrics_without_samples() -> None:
    registry = CollectorRegistry()
    Counter("demo_requests", "h", ["route"], registry=registry)  # no sample yet
    Histogram("demo_seconds", "h", registry=registry)
    names = exported_names(generate_latest(registry).decode())
    assert {"demo_requests_total", "demo_seconds_bucket", "demo_seconds_count"} <= names
    assert "demo_requests" not in names and "demo_seconds" not in names


def test_referenced_names_skip_functions_labels_and_quoted_values() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, modelyard_like_label) (rate("
        'modelyard_latency_bucket{route="modelyard_not_a_metric"}[$__rate_interval])))'
        " / on (instance) group_left modelyard_other"
    )
    # A label name that starts with the prefix would be a false alarm, never a miss.
    assert referenced_names(expr) == {
        "modelyard_latency_bucket",
        "modelyard_like_label",
        "modelyard_other",
    }
    assert "$" not in grafana_to_promql('rate(x{job=~"$job"}[$__rate_interval])')
