"""deploy/compose.yaml as Docker Compose itself reads it (``docker compose config``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

ENV_EXAMPLE = DEPLOY / ".env.example"


def _config(
    docker_compose: tuple[list[str], dict[str, str]], *args: str
) -> subprocess.CompletedProcess[str]:
    command, env = docker_compose
    return subprocess.run(
        [*command, "-f", str(DEPLOY / "compose.yaml"), *args, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def stack(docker_compose: tuple[list[str], dict[str, str]]) -> dict[str, Any]:
    result = _config(docker_compose, "--env-file", str(ENV_EXAMPLE), "--profile", "train")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_stack_has_every_part(stack: dict[str, Any]) -> None:
    assert set(stack["services"]) == {
        "postgres",
        "minio",
        "minio-init",
        "mlflow",
        "server",
        "prometheus",
        "grafana",
        "ui",
        "train",
    }


def test_mlflow_stores_runs_in_postgres_and_artifacts_in_minio(stack: dict[str, Any]) -> None:
    mlflow = stack["services"]["mlflow"]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith(
        "postgresql://mlflow:change-me-postgres@postgres:5432/"
    )
    assert "--artifacts-destination=s3://mlflow/artifacts" in mlflow["command"]
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert mlflow["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert "mc mb" in " ".join(stack["services"]["minio-init"]["command"])


def test_nothing_without_auth_is_reachable_from_outside_the_host(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert stack["networks"]["backend"]["internal"] is True
    for name in ("postgres", "minio", "minio-init"):
        assert "ports" not in services[name], name
        assert set(services[name]["networks"]) == {"backend"}, name
    for name in ("mlflow", "prometheus", "grafana"):
        assert {p["host_ip"] for p in services[name]["ports"]} == {"127.0.0.1"}, name


def test_server_and_ui_use_the_images_built_here(stack: dict[str, Any]) -> None:
    services = stack["services"]
    for name in ("mlflow", "server", "ui", "train"):
        build = services[name]["build"]
        assert Path(build["context"]) == ROOT, name
        assert (ROOT / build["dockerfile"]).is_file(), name
    server = services["server"]
    assert server["command"][:2] == ["mnist5k-cnn@production", "--host=0.0.0.0"]
    assert server["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    ui = services["ui"]
    assert ui["entrypoint"] + ui["command"] == [
        "modelyard",
        "ui",
        "--server",
        "http://server:8000",
        # Streamlit must listen beyond the container's loopback to be published.
        "--host",
        "0.0.0.0",
        "--port",
        "8501",
    ]
    assert ui["build"]["args"]["EXTRAS"] == "serve,ui"


def test_prometheus_and_grafana_reach_services_by_name(stack: dict[str, Any]) -> None:
    # The shared files under deploy/prometheus and deploy/grafana use 127.0.0.1;
    # inside compose the addresses must be service names.
    scrape = stack["configs"]["prometheus-compose"]["content"]
    assert '"server:8000"' in scrape and "/etc/prometheus/rules/*.yml" in scrape
    assert "http://prometheus:9090" in stack["configs"]["grafana-datasource"]["content"]
    mounts = {
        v["target"]: Path(v["source"])
        for name in ("prometheus", "grafana")
        for v in stack["services"][name]["volumes"]
        if v["type"] == "bind"
    }
    assert mounts["/etc/prometheus/rules"] == DEPLOY / "prometheus" / "rules"
    assert mounts["/var/lib/grafana/dashboards/modelyard"] == DEPLOY / "grafana" / "dashboards"


def test_missing_secrets_stop_compose_with_a_named_variable(
    docker_compose: tuple[list[str], dict[str, str]],
) -> None:
    result = _config(docker_compose)  # no --env-file, no deploy/.env
    assert result.returncode != 0
    assert "is missing a value" in result.stderr
    assert "in deploy/.env" in result.stderr
