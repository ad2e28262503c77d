"""The compose stack's processes, run directly: an MLflow tracking server on
PostgreSQL with proxied artifacts, training through it, and the model server
resolving ``<name>@candidate`` through it (what the `server` container does)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import FAST
from tests.helpers import MlflowServer, Server, run_cli

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def _admin(sql: str) -> None:
    import psycopg

    # autocommit: CREATE/DROP DATABASE cannot run inside a transaction.
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as connection:
        connection.execute(sql)


@pytest.fixture
def database() -> Iterator[str]:
    """A PostgreSQL database of this test's own, dropped afterwards."""
    name = f"modelyard_it_{uuid.uuid4().hex[:12]}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except Exception as error:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth) is needed: {error}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def tracking_server(database: str, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` on PostgreSQL, artifacts proxied to a local destination."""
    server = MlflowServer(database, tmp_path / "artifacts", tmp_path / "mlflow-server.log")
    try:
        yield server.start()
    finally:
        server.kill()


def _smoke_test(url: str, expect_version: str, wait_s: int) -> subprocess.CompletedProcess[str]:
    """deploy/smoke_test.py against the server at ``url``, expecting digits-cnn at
    ``expect_version`` within ``wait_s`` seconds."""
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy" / "smoke_test.py"),
            "--url",
            url,
            "--model",
            "digits-cnn",
            "--expect-version",
            expect_version,
            "--wait",
            str(wait_s),
        ],
        capture_output=True,
        text=True,
    )


def test_train_and_serve_through_a_tracking_server_on_postgres(
    tracking_server: str, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Neither side keeps a local store: everything goes through the server.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "client-home"))
    trained = run_cli("train", *FAST, "train.max_epochs=1", "--json")
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = json.loads(trained.stdout)
    assert result["tracking_uri"] == tracking_server
    assert result["model_version"] == "1"

    # The run and the version live in PostgreSQL, the files in the artifacts folder.
    import psycopg

    with psycopg.connect(database) as connection:
        rows = connection.execute("SELECT name, version FROM model_versions").fetchall()
    assert rows == [("digits-cnn", 1)]
    assert list((tmp_path / "artifacts").rglob("model.onnx"))

    server = Server("digits-cnn@candidate")  # resolves the alias through the server
    try:
        answer = httpx.post(
            f"{server.url}/v1/models/digits-cnn:predict",
            json={"instances": [[[0] * 8] * 8]},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_version"] == "1"
        assert abs(sum(body["predictions"][0]["probabilities"].values()) - 1.0) < 1e-4
        # The smoke test the deploy workflows run, against this server.
        smoke = _smoke_test(server.url, expect_version="1", wait_s=10)
        assert smoke.returncode == 0, smoke.stderr
        assert "serves digits-cnn version 1" in smoke.stdout
        wrong = _smoke_test(server.url, expect_version="2", wait_s=1)
        assert wrong.returncode == 1 and "did not serve version 2" in wrong.stderr
    finally:
        assert server.stop() == 0
