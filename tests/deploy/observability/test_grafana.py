"""deploy/grafana: provisioning files and a dashboard whose every query reads
metrics the server really exports, so that it cannot go stale silently."""

from __future__ import annotations

import pytest
import yaml
from tests.deploy.observability.metric_names import (
    DASHBOARD,
    DRIFT_GAUGES,
    PROMETHEUS_SERIES,
    ROOT,
    dashboard,
    dashboard_exprs,
    referenced_names,
)

GRAFANA = ROOT / "deploy" / "grafana"


def test_provisioning_points_at_prometheus_and_the_dashboard_folder() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/modelyard.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    board = dashboard()
    (datasource,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert datasource["current"]["value"] == source["uid"]


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in board["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    assert DASHBOARD.read_text().endswith("\n")


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    by_metric: dict[str, list[str]] = {}
    for _, expr in dashboard_exprs():
        for name in referenced_names(expr):
            by_metric.setdefault(name, []).append(expr)
    joined = "\n".join(expr for _, expr in dashboard_exprs())
    assert "sum by (status)" in joined  # requests by status
    for quantile in ("0.5", "0.9", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(modelyard_request_duration" in (
            joined
        )
    for name in (
        "modelyard_batch_size_bucket",
        "modelyard_batch_trigger_total",
        "modelyard_queue_seconds_bucket",
        "modelyard_inference_seconds_bucket",
        "modelyard_predictions_total",  # class mix
        "modelyard_prediction_confidence_bucket",
        "modelyard_drift_score",
        "modelyard_drift_detected",
        "modelyard_model_info",  # model version
        "modelyard_requests_in_flight",
    ):
        assert name in by_metric, f"no panel reads {name}"


@pytest.mark.slow  # trains the session's model
def test_every_dashboard_query_reads_exported_metrics(served_names: set[str]) -> None:
    known = served_names | DRIFT_GAUGES
    for title, expr in dashboard_exprs():
        names = referenced_names(expr)
        assert names or referenced_names(expr, prefix="") & PROMETHEUS_SERIES, (
            f"{title!r} queries no known metric: {expr}"
        )
        missing = names - known
        assert not missing, f"panel {title!r} reads {missing}, which the server does not export"
