"""A real Prometheus scrapes a real `modelyard serve` and loads the alert rules;
every dashboard query is valid PromQL there, and those on served metrics have data."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from tests.deploy.observability.metric_names import (
    DRIFT_GAUGES,
    PROMETHEUS,
    dashboard_exprs,
    exported_names,
    grafana_to_promql,
    referenced_names,
)
from tests.helpers import Server, free_port

pytestmark = pytest.mark.slow


class Prometheus:
    """The `prometheus` binary on a temp config and storage, scraping every second."""

    def __init__(self, binary: str, target: str, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        rules = sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml"))
        job = {"job_name": "modelyard", "static_configs": [{"targets": [target]}]}
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": rules,
            "scrape_configs": [job],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = folder / "prometheus.log"
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                "--log.level=warn",
            ],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.wait_until(lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200, 30)

    def wait_until(self, check: Any, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log.read_text()}")
            try:
                if check():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not within {seconds}s; prometheus log:\n{self.log.read_text()}")

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]  # type: ignore[no-any-return]

    def wait_for(self, expr: str, seconds: float = 30) -> list[dict[str, Any]]:
        self.wait_until(lambda: bool(self.query(expr)), seconds)
        return self.query(expr)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(trained) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    served = Server(str(trained.bundle_path), "poll_interval_s=0")
    yield served
    served.stop()


@pytest.fixture(scope="module")
def prometheus(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    import shutil

    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: apt-get install -y prometheus")
    running = Prometheus(binary, f"127.0.0.1:{server.port}", tmp_path_factory.mktemp("prom"))
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8)).tolist()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(4):  # traffic across several scrapes, so rate() has two points
            assert client.post("/v1/models/digits-cnn:predict", json={"instances": images})
            assert client.post("/v1/models/digits-cnn:predict", json={}).status_code == 400
            time.sleep(1.1)
    yield running
    running.stop()


def test_prometheus_scrapes_the_server(server: Server, prometheus: Prometheus) -> None:
    (up,) = prometheus.wait_for('up{job="modelyard"} == 1')
    assert up["metric"]["instance"] == f"127.0.0.1:{server.port}"
    ok = prometheus.wait_for('modelyard_requests_total{status="200"} > 0')
    assert {series["metric"]["route"] for series in ok} >= {"/v1/models/{name}:predict"}
    (served,) = prometheus.wait_for("modelyard_model_info == 1")
    assert served["metric"]["model"] == "digits-cnn"
    classes = prometheus.wait_for("sum(modelyard_predictions_total)")
    assert float(classes[0]["value"][1]) == 20  # 4 requests of 5 images


def test_prometheus_loads_the_alert_rules_and_none_fires(prometheus: Prometheus) -> None:
    def rules() -> dict[str, dict[str, Any]]:
        groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        return {rule["name"]: rule for group in groups for rule in group["rules"]}

    assert {"ModelyardHighErrorRate", "ModelyardHighP99Latency", "ModelyardDriftDetected"} <= set(
        rules()
    )
    prometheus.wait_until(
        lambda: all(not r["lastEvaluation"].startswith("0001") for r in rules().values())
    )
    assert all(rule["health"] == "ok" for rule in rules().values()), rules()
    # A healthy server with its model loaded: no alert is pending or firing.
    assert prometheus.query('ALERTS{alertname=~"Modelyard.*"}') == []


def test_every_dashboard_query_runs_and_the_served_ones_have_data(
    server: Server, prometheus: Prometheus
) -> None:
    scraped = exported_names(httpx.get(f"{server.url}/metrics", timeout=5).text)
    prometheus.wait_for("sum(rate(modelyard_requests_total[1m])) > 0")
    empty = []
    for title, expr in dashboard_exprs():
        result = prometheus.query(grafana_to_promql(expr))  # asserts it parses and evaluates
        names = referenced_names(expr)
        assert names <= scraped | DRIFT_GAUGES, (title, names - scraped)
        expect_data = not names & (DRIFT_GAUGES | {"modelyard_reloads_total"}) and "5.." not in expr
        if expect_data and not result:
            empty.append((title, expr))
    assert not empty, f"queries on served metrics returned nothing: {empty}"
