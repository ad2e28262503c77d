"""deploy/prometheus: promtool accepts the config and rules, the rules' unit tests
pass, and every metric a rule reads is one the server exports."""

from __future__ import annotations

import subprocess

import pytest
from tests.deploy.observability.metric_names import (
    DRIFT_GAUGES,
    PROMETHEUS,
    PROMETHEUS_SERIES,
    referenced_names,
    rule_exprs,
)


def _promtool(promtool: str, *args: str) -> str:
    done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_promtool_accepts_the_config_and_its_rule_files(promtool: str) -> None:
    out = _promtool(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert "2 rule files found" in out  # the rules/*.yml glob matched both
    rules = sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml"))
    checked = _promtool(promtool, "check", "rules", *rules)
    assert "SUCCESS: 6 rules found" in checked and "SUCCESS: 1 rules found" in checked


def test_alert_rules_pass_their_promtool_unit_tests(promtool: str) -> None:
    tests = sorted(str(p) for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests
    assert "SUCCESS" in _promtool(promtool, "test", "rules", *tests)


def test_alerts_cover_errors_latency_drift_and_availability() -> None:
    alerts = dict(rule_exprs())
    assert "modelyard_requests_total" in alerts["ModelyardHighErrorRate"]
    assert "histogram_quantile(0.99" in alerts["ModelyardHighP99Latency"]
    assert "modelyard_drift_detected" in alerts["ModelyardDriftDetected"]
    assert "up{" in alerts["ModelyardScrapeDown"]
    assert "modelyard_model_info" in alerts["ModelyardModelNotLoaded"]
    live = alerts["ModelyardLiveAccuracyLow"]
    assert "modelyard_live_accuracy" in live and "modelyard_test_accuracy" in live


@pytest.mark.slow  # trains the session's model
def test_every_metric_a_rule_reads_is_exported(served_names: set[str]) -> None:
    for alert, expr in rule_exprs():
        names = referenced_names(expr)
        assert names or referenced_names(expr, prefix="") & PROMETHEUS_SERIES, alert
        missing = names - served_names - DRIFT_GAUGES
        assert not missing, f"{alert} reads {missing}, which the server does not export"
