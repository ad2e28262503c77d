"""``modelyard deploy``: only gated versions move an alias, and a running server
started on that alias swaps to the deployed version by itself."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from tests.helpers import Server, ctrl_c_inside, run_cli

from modelyard import registry, tracking
from modelyard.deploy import deploy
from modelyard.errors import Refused
from modelyard.mlflow_model import log_bundle_model
from modelyard.promote import promote

pytestmark = pytest.mark.slow
NAME = "digits-cnn"
SPEC = """\
model: digits-cnn
environments:
  staging:    {alias: staging,    replicas: 1}
  production: {alias: production, replicas: 2}
resources: {cpu: "1", memory: 512Mi}
serve: {max_batch_size: 16, max_delay_ms: 0}
"""
# The copies below are one model, so challenger and champion tie: a margin of 0 passes.
LENIENT = ["promote.min_score=0"]


def register_copies(bundle_path: Path, count: int) -> list[str]:
    """Register the session's trained bundle ``count`` times (versions 1..count)."""
    tracking.configure()
    experiment = tracking.ensure_experiment("digits")
    versions = []
    for _ in range(count):
        with mlflow.start_run(experiment_id=experiment):
            uri = log_bundle_model(
                bundle_path, np.zeros((2, 8, 8, 1), np.uint8), np.full((2, 10), 0.1, np.float32)
            )
        versions.append(registry.register(uri, NAME))
    return versions


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "digits-cnn.yaml"
    path.write_text(SPEC)
    return path


def alias(name: str) -> str:
    return str(MlflowClient().get_model_version_by_alias(NAME, name).version)


def test_only_gated_versions_deploy(trained, home: Path, spec: Path) -> None:  # type: ignore[no-untyped-def]
    register_copies(trained.bundle_path, 3)
    with pytest.raises(Refused, match="no version of digits-cnn has passed the promotion"):
        deploy(spec, "staging")
    assert promote(NAME, "staging", version="1", dry_run=True, overrides=LENIENT).moved is False
    with pytest.raises(Refused, match="version 2 has not been through the promotion gate"):
        deploy(spec, "staging", version="2")

    done = deploy(spec, "staging")  # the newest version that passed: 1
    assert (done.version, done.previous, done.moved, done.gate) == ("1", None, True, "passed")
    assert alias("staging") == "1"
    assert MlflowClient().get_model_version(NAME, "1").tags["modelyard.deploy.staging"]
    assert done.to_dict()["serve_command"] == (
        "modelyard serve digits-cnn@staging max_batch_size=16 max_delay_ms=0"
    )

    refused = promote(NAME, "production", version="2", overrides=["promote.min_score=1.01"])
    assert refused.decision is not None and refused.decision.outcome == "refused"
    with pytest.raises(Refused, match="version 2 was refused by the promotion gate for pro"):
        deploy(spec, "production", version="2")
    # Gated for staging is not gated for production.
    with pytest.raises(Refused, match="version 1 has not been through the promotion gate"):
        deploy(spec, "production", version="1")

    cli = run_cli("deploy", str(spec), "--env", "staging", "--version", "3")
    # A gate that says no is a refusal (exit 1), not a usage error (exit 2).
    assert cli.returncode == 1 and "has not been through the promotion gate" in cli.stderr
    assert cli.stderr.count("\n") == 1 and alias("staging") == "1"
    unknown = run_cli("deploy", str(spec), "--env", "qa")
    assert unknown.returncode == 2 and "has no environment 'qa'" in unknown.stderr


def _served_version(server: Server) -> str:
    response = httpx.post(
        f"{server.url}/v1/models/{NAME}:predict", json={"instances": [[[0] * 8] * 8]}, timeout=10
    )
    assert response.status_code == 200, response.text
    return str(response.json()["model_version"])


def test_a_running_server_picks_up_a_deployment(trained, home: Path, spec: Path) -> None:  # type: ignore[no-untyped-def]
    register_copies(trained.bundle_path, 2)
    assert promote(NAME, "staging", version="1", overrides=LENIENT).moved
    server = Server(f"{NAME}@staging", "poll_interval_s=0.3")
    try:
        assert _served_version(server) == "1"
        gated = promote(NAME, "staging", version="2", dry_run=True, overrides=LENIENT)
        assert gated.decision is not None and gated.decision.outcome == "passed"
        assert alias("staging") == "1"

        result = run_cli("deploy", str(spec), "--env", "staging", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["version"] == "2" and alias("staging") == "2"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _served_version(server) != "2":
            time.sleep(0.2)
        assert _served_version(server) == "2"
    finally:
        assert server.stop() == 0
    assert "swapped digits-cnn version 1 -> 2" in server.log.read_text()


def test_a_ctrl_c_in_promote_and_deploy_comes_after_the_move_and_its_records(
    trained, home: Path, spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    # Unheld, a press in the gate's first tag left a decision half recorded and no
    # move; one in deploy's alias write left the alias, its history and stamp unwritten.
    register_copies(trained.bundle_path, 1)
    with monkeypatch.context() as patch:
        ctrl_c_inside(patch, MlflowClient, "set_model_version_tag")
        with pytest.raises(KeyboardInterrupt):
            promote(NAME, "staging", version="1", overrides=LENIENT)
    tags = MlflowClient().get_model_version(NAME, "1").tags
    assert tags["modelyard.gate.staging"] == "passed" and "modelyard.gate.staging.at" in tags
    assert alias("staging") == "1"
    history = MlflowClient().get_registered_model(NAME).tags
    assert json.loads(history["modelyard.alias_history.staging"]) == ["1"]
    assert promote(NAME, "production", version="1", dry_run=True, overrides=LENIENT).moved is False
    with monkeypatch.context() as patch:
        ctrl_c_inside(patch, MlflowClient, "set_registered_model_alias")
        with pytest.raises(KeyboardInterrupt):
            deploy(spec, "production", version="1")
    assert alias("production") == "1"
    history = MlflowClient().get_registered_model(NAME).tags
    assert json.loads(history["modelyard.alias_history.production"]) == ["1"]
    assert MlflowClient().get_model_version(NAME, "1").tags["modelyard.deploy.production"]
