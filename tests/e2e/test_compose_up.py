"""deploy/compose.yaml brought up for real, end to end (issue 14, part 3).

The stack runs from the images built here, with stand-ins for the public images that
cannot be pulled (tests/e2e/stack/compose.e2e.yaml says which and why; Grafana is
left out). On the host, a digits model is trained against the stack's MLflow
(PostgreSQL for runs and registry, S3 for artifacts, proxied by the tracking
server), registered, gated with ``modelyard promote`` and deployed to staging with
``modelyard deploy``; the containerised server, started on ``digits-cnn@staging``,
serves it, and hot-reloads a second version deployed the same way. Prometheus
scrapes the server (``up == 1``) and the UI answers. Every wait is bounded; the stack
is taken down with its volumes at the end, pass or fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import FAST
from tests.e2e.docker import PREFIX, ROOT, DockerError, docker, record_timing
from tests.helpers import free_port, run_cli

pytestmark = pytest.mark.e2e

MODEL = "digits-cnn"
SPEC = f"""\
model: {MODEL}
environments:
  staging:    {{alias: staging,    replicas: 1}}
  production: {{alias: production, replicas: 2}}
resources: {{cpu: "1", memory: 512Mi}}
serve: {{max_batch_size: 32, max_delay_ms: 0}}
"""
GATE = ["promote.min_score=0"]
"""Two trainings of one config tie: the gate's other checks (latency, size, per-class)
still run; only the absolute score floor is lowered for a 1-epoch model."""
POLL_S = 1
"""The server's alias poll in this test (MODEL_POLL_INTERVAL_S; compose's default is 10)."""
OVERRIDE = ROOT / "tests" / "e2e" / "stack" / "compose.e2e.yaml"


class Stack:
    """``docker compose`` for one project of deploy/compose.yaml plus the test override."""

    def __init__(self, env: dict[str, str]):
        compose = Path(sys.executable).with_name("docker-compose")
        if not compose.exists():
            pytest.fail(
                f"docker-compose is missing from {compose.parent}: install modelyard[infra]"
            )
        self.project = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
        self.command = [str(compose), "--project-name", self.project]
        self.command += ["--file", str(ROOT / "deploy" / "compose.yaml"), "--file", str(OVERRIDE)]
        self.env = env

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                [*self.command, *args],
                capture_output=True,
                text=True,
                env=self.env,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as error:
            raise DockerError(
                f"docker compose {' '.join(args[:2])} ran past {timeout:g} s"
            ) from error
        if check and result.returncode != 0:
            raise DockerError(
                f"docker compose {' '.join(args[:2])} exited {result.returncode}:\n"
                + (result.stderr or result.stdout)[-3000:]
            )
        return result

    def logs(self, *services: str, lines: int = 30) -> str:
        result = self.run("logs", "--no-color", "--tail", str(lines), *services, check=False)
        return (result.stdout + result.stderr)[-6000:]

    def sql(self, query: str) -> str:
        """One value from the stack's PostgreSQL (MLflow's database), by psql inside it."""
        result = self.run(
            *("exec", "-T", "postgres", "psql", "-U", "mlflow", "-d", "mlflow", "-tAc", query)
        )
        return result.stdout.strip()


def wait_for(what: str, check: Callable[[], bool], timeout: float, stack: Stack) -> float:
    """Seconds until ``check()`` holds; fails with the stack's logs after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise DockerError(f"{what}: not within {timeout:g} s\n{stack.logs()}")


def answers_200(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=3).status_code == 200


def served_version(url: str) -> str | None:
    """The version ``/v2/models/digits-cnn`` reports, when one version is loaded."""
    answer = httpx.get(f"{url}/v2/models/{MODEL}", timeout=3)
    versions = answer.json().get("versions", []) if answer.status_code == 200 else []
    return versions[0] if len(versions) == 1 else None


def server_started_at(stack: Stack) -> str:
    """When the server container last (re)started, and how often it has."""
    container = stack.run("ps", "--quiet", "server").stdout.strip()
    assert container, stack.logs("server")
    return docker(
        "inspect", "--format", "{{.State.StartedAt}} {{.RestartCount}}", container
    ).stdout.strip()


@pytest.fixture
def stack(
    server_image: str,
    ui_image: str,
    mlflow_image: str,
    stand_in_images: dict[str, str],
    tmp_path: Path,
) -> Iterator[tuple[Stack, dict[str, str]]]:
    ports = {name: free_port() for name in ("MLFLOW", "SERVER", "PROMETHEUS", "UI", "GRAFANA")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "MLFLOW_"))}
    env.update({f"{name}_PORT": str(port) for name, port in ports.items()})
    env.update(
        E2E_POSTGRES_IMAGE=stand_in_images["postgres"],
        E2E_S3_IMAGE=stand_in_images["s3"],
        E2E_PROMETHEUS_IMAGE=stand_in_images["prometheus"],
        E2E_MLFLOW_IMAGE=mlflow_image,
        E2E_SERVER_IMAGE=server_image,
        E2E_UI_IMAGE=ui_image,
        POSTGRES_PASSWORD=uuid.uuid4().hex,
        MINIO_ROOT_USER="modelyard",
        MINIO_ROOT_PASSWORD=uuid.uuid4().hex,
        GRAFANA_ADMIN_PASSWORD=uuid.uuid4().hex,  # required by the file; Grafana stays off
        MLFLOW_BUCKET="mlflow",
        MODEL_NAME=MODEL,
        MODEL_ALIAS="staging",
        MODEL_POLL_INTERVAL_S=str(POLL_S),
    )
    stack = Stack(env)
    urls = {name.lower(): f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        yield stack, urls
    finally:
        stack.run("down", "--volumes", "--timeout", "30", timeout=180, check=False)


def test_train_register_promote_deploy_and_hot_reload_in_the_stack(
    stack: tuple[Stack, dict[str, str]], tmp_path: Path
) -> None:
    compose, urls = stack
    config = compose.run("config", "--format", "json")
    services = json.loads(config.stdout)["services"]
    assert "grafana" not in services, "Grafana cannot run here; the override must leave it out"
    published = {
        port["host_ip"] for service in services.values() for port in service.get("ports", [])
    }
    assert published == {"127.0.0.1"}, f"the test stack publishes on {published}"

    # Up: everything but the model server waits for nothing from the host. The server
    # exits (and compose restarts it) until a version carries the alias it serves.
    started = time.monotonic()
    compose.run("up", "--detach", "--no-build", "--pull", "never", timeout=300)
    wait_for("MLflow /health", answers_200(f"{urls['mlflow']}/health"), 180, compose)
    wait_for("Prometheus /-/ready", answers_200(f"{urls['prometheus']}/-/ready"), 60, compose)
    wait_for("UI /_stcore/health", answers_200(f"{urls['ui']}/_stcore/health"), 120, compose)
    stack_up_s = time.monotonic() - started
    states = {
        row["Service"]: row["State"]
        for row in map(
            json.loads, compose.run("ps", "--all", "--format", "json").stdout.splitlines()
        )
    }
    assert states["minio-init"] == "exited" and states["postgres"] == "running", states

    home = tmp_path / "trainer-home"
    env = {"MLFLOW_TRACKING_URI": urls["mlflow"], "MODELYARD_HOME": str(home)}
    spec = tmp_path / f"{MODEL}.yaml"
    spec.write_text(SPEC)

    def train_and_gate(version: str) -> None:
        trained = run_cli("train", *FAST, "train.max_epochs=1", "--json", env=env, timeout=600)
        assert trained.returncode == 0, trained.stderr[-3000:]
        assert json.loads(trained.stdout)["model_version"] == version
        gated = run_cli(
            *("promote", MODEL, "--to", "staging", "--version", version, "--dry-run", "--json"),
            *GATE,
            env=env,
            timeout=300,
        )
        assert gated.returncode == 0, gated.stdout[-2000:] + gated.stderr[-3000:]

    def deploy(version: str) -> tuple[float, float]:
        """(seconds from `modelyard deploy` starting, and from its return, until the
        containerised server reports ``version``)."""
        started = time.monotonic()
        result = run_cli("deploy", str(spec), "--env", "staging", "--json", env=env)
        returned = time.monotonic()
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads(result.stdout)["version"] == version
        wait_for(
            f"the server reporting version {version}",
            lambda: served_version(urls["server"]) == version,
            180,
            compose,
        )
        now = time.monotonic()
        return now - started, now - returned

    train_and_gate("1")
    first_s, _ = deploy("1")
    record_timing(
        "compose: stack up (compose up to MLflow, Prometheus and UI answering)", stack_up_s
    )
    record_timing("compose: deploy of version 1 until the (restarting) server serves it", first_s)

    # Runs and the registry are in PostgreSQL, artifacts in the S3 bucket.
    assert compose.sql(f"SELECT count(*) FROM model_versions WHERE name = '{MODEL}'") == "1"
    listed = compose.run(
        *("exec", "-T", "minio", "python", "-c"),
        "import boto3, os; s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:9000',"
        " aws_access_key_id='x', aws_secret_access_key='x', region_name='us-east-1');"
        " print(sum(o['Key'].endswith('bundle.json') for o in"
        " s3.list_objects_v2(Bucket='mlflow').get('Contents', [])))",
    )
    assert int(listed.stdout.strip()) >= 1, listed.stdout + listed.stderr

    # Prometheus scrapes the server.
    def scraped() -> bool:
        answer = httpx.get(
            f"{urls['prometheus']}/api/v1/query", params={"query": "up{job='modelyard'}"}, timeout=3
        ).json()
        values = [sample["value"][1] for sample in answer["data"]["result"]]
        return values == ["1"]

    wait_for("Prometheus: up{job='modelyard'} == 1", scraped, 90, compose)

    # The UI: Streamlit's health and its page.
    assert httpx.get(f"{urls['ui']}/_stcore/health", timeout=5).text == "ok"
    page = httpx.get(f"{urls['ui']}/", timeout=5)
    assert page.status_code == 200 and "<title>" in page.text.lower()

    # A second version: gated, deployed, hot-reloaded by the running server.
    started_at = server_started_at(compose)
    train_and_gate("2")
    assert served_version(urls["server"]) == "1"
    from_start_s, from_return_s = deploy("2")
    answer = httpx.post(
        f"{urls['server']}/v1/models/{MODEL}:predict",
        json={"instances": [[[0] * 8] * 8]},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.json()["model_version"] == "2", answer.text
    # Hot reload, not a restart: the server process answering started before the deploy.
    assert server_started_at(compose) == started_at
    assert f"swapped {MODEL} version 1 -> 2" in compose.logs("server", lines=200)
    record_timing("compose: `modelyard deploy` started until version 2 answers", from_start_s)
    record_timing("compose: `modelyard deploy` returned until version 2 answers", from_return_s)
