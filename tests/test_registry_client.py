"""The serving path's registry client against real stores: a real `mlflow server`
(REST, proxied artifacts) and the embedded SQLite store. No MLflow import on the way,
checksummed cache, tampering refused, and a start from the cache while the registry
is down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from tests.conftest import FAST
from tests.helpers import MlflowServer, Server, run_cli

from modelyard import bundle
from modelyard.bundle import MANIFEST, MANIFEST_SHA_TAG, ONNX_FILE, file_sha256
from modelyard.errors import ModelyardError, RegistryError
from modelyard.registry_client import ModelRef, fetch_bundle, resolve_alias

pytestmark = pytest.mark.slow
NAME = "digits-cnn"

# Loads a model in a fresh interpreter and reports whether MLflow was imported.
PROBE = textwrap.dedent(
    """
    import json, sys
    from modelyard import bundle
    loaded = bundle.load(sys.argv[1])
    print(json.dumps({"path": str(loaded.path), "version": loaded.version,
                      "note": loaded.from_cache_note, "mlflow": "mlflow" in sys.modules}))
    """
)


def probe(uri: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, uri],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@dataclass
class TrackingServer:
    mlflow: MlflowServer
    home: Path

    @property
    def url(self) -> str:
        return self.mlflow.uri

    @property
    def artifacts(self) -> Path:
        return self.mlflow.artifacts

    def kill(self) -> None:
        self.mlflow.kill()


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """`mlflow server` (SQLite backend, artifacts proxied) and one model trained through it."""
    root = tmp_path_factory.mktemp("rest")
    mlflow = MlflowServer(
        f"sqlite:///{root / 'server.db'}", root / "artifacts", root / "mlflow.log"
    )
    server = TrackingServer(mlflow, root / "home")
    try:
        mlflow.start()
        env = {"MLFLOW_TRACKING_URI": server.url, "MODELYARD_HOME": str(server.home)}
        trained = run_cli("train", *FAST, "train.max_epochs=1", "--json", env=env)
        assert trained.returncode == 0, trained.stderr[-3000:]
        yield server
    finally:
        server.kill()


def server_env(server: TrackingServer) -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": server.url, "MODELYARD_HOME": str(server.home)}


def test_rest_resolves_and_fetches_without_importing_mlflow(
    tracking_server: TrackingServer,
) -> None:
    result = probe(f"{NAME}@candidate", server_env(tracking_server))
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout)
    assert loaded == {**loaded, "version": "1", "note": None, "mlflow": False}
    folder = Path(loaded["path"])
    assert folder.is_relative_to(tracking_server.home / "cache" / "bundles")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MANIFEST, ONNX_FILE, "reference_profile.json"]
    )
    assert resolve_alias(f"models:/{NAME}@candidate", tracking_server.url) == "1"
    assert resolve_alias(f"models:/{NAME}/1", tracking_server.url) is None  # pinned


def test_rest_errors_name_what_exists(
    tracking_server: TrackingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tracking_server.home))
    with pytest.raises(RegistryError, match=f"'nope' not found; registered models: {NAME}"):
        fetch_bundle("models:/nope@candidate", tracking_server.url)
    with pytest.raises(RegistryError, match="no alias 'production'; its aliases: candidate"):
        fetch_bundle(f"models:/{NAME}@production", tracking_server.url)
    with pytest.raises(RegistryError, match="has no version 7"):
        fetch_bundle(f"models:/{NAME}/7", tracking_server.url)


def test_a_tampered_cache_is_fetched_again_and_a_tampered_registry_is_refused(
    tracking_server: TrackingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tracking_server.home))
    uri = f"models:/{NAME}/1"
    fetched = fetch_bundle(uri, tracking_server.url)
    assert fetched is not None
    good = file_sha256(fetched.folder / ONNX_FILE)
    (fetched.folder / ONNX_FILE).write_bytes(b"not the model")
    again = fetch_bundle(uri, tracking_server.url)
    assert again is not None and file_sha256(again.folder / ONNX_FILE) == good

    # The registry's own copy altered after registration: never cached, never served.
    stored = next(tracking_server.artifacts.rglob(ONNX_FILE))
    original = stored.read_bytes()
    try:
        stored.write_bytes(original[:-16] + bytes(16))
        (again.folder / ONNX_FILE).write_bytes(b"")  # force a fetch
        with pytest.raises(ModelyardError, match=r"model\.onnx does not match the sha256"):
            fetch_bundle(uri, tracking_server.url)
        assert not (again.folder / MANIFEST).exists()
    finally:
        stored.write_bytes(original)


def test_a_registry_answering_500_is_unreachable_not_a_wrong_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"boom")

        def log_message(self, *args: object) -> None:
            pass

    broken = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=broken.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{broken.server_address[1]}"
        with pytest.raises(RegistryError, match=r"answered HTTP 500.*no verified copy"):
            fetch_bundle(f"models:/{NAME}@candidate", url)
    finally:
        broken.shutdown()


def test_registry_down_starts_from_the_cache_and_says_so(
    tracking_server: TrackingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = server_env(tracking_server)
    assert probe(f"{NAME}@candidate", env).returncode == 0  # resolved and cached
    tracking_server.kill()
    result = probe(f"{NAME}@candidate", env)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout)
    assert loaded["version"] == "1" and not loaded["mlflow"]
    assert "registry unreachable (cannot reach the MLflow tracking server" in loaded["note"]
    assert "serving digits-cnn version 1 from the cache, resolved 20" in loaded["note"]

    # A server started now serves that version, and its log and metadata say why.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    server = Server(f"{NAME}@candidate", "poll_interval_s=0")
    try:
        metadata = httpx.get(f"{server.url}/v2/models/{NAME}", timeout=10).json()
        assert metadata["versions"] == ["1"]
        assert "from the cache" in metadata["parameters"]["from_cache"]
        assert metadata["parameters"]["source"] == f"models:/{NAME}@candidate"
    finally:
        assert server.stop() == 0
    assert "registry unreachable" in server.log.read_text()

    # An alias never resolved cannot start: one line, exit 2.
    served = run_cli("evaluate", f"{NAME}@staging", "--no-log", env=env)
    assert served.returncode == 2
    assert "the cache holds no verified copy of models:/digits-cnn@staging" in served.stderr
    assert served.stderr.count("\n") == 1, served.stderr


def test_sqlite_store_is_read_without_mlflow(trained, use_session_home: Path) -> None:  # type: ignore[no-untyped-def]
    result = probe(f"{NAME}@candidate", {"MODELYARD_HOME": str(use_session_home)})
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout)
    assert loaded["version"] == str(trained.model_version) and not loaded["mlflow"]
    cached = Path(loaded["path"])
    # bundle.json is the very file registered, as the version's tag records.
    from mlflow.tracking import MlflowClient

    tags = MlflowClient().get_model_version(NAME, str(trained.model_version)).tags
    assert tags[MANIFEST_SHA_TAG] == file_sha256(cached / MANIFEST)
    assert bundle.read_bundle(cached).manifest["files"][ONNX_FILE]["sha256"] == file_sha256(
        cached / ONNX_FILE
    )


def test_model_refs_parse_the_mlflow_forms() -> None:
    assert ModelRef.parse("models:/a@b") == ModelRef("a", "b", None)
    assert ModelRef.parse("models:/a/3") == ModelRef("a", None, "3")
    assert ModelRef.parse("models:/a") == ModelRef("a")
    assert ModelRef.parse("runs:/abc/model") is None


# Imports first, then waits for a start file, so every process fetches at the same moment.
RACE_PROBE = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from modelyard import bundle
    go = Path(sys.argv[2])
    (go.parent / f"ready-{go.name}-{sys.argv[3]}").touch()
    while not go.exists():
        time.sleep(0.001)
    loaded = bundle.load(sys.argv[1])
    print(json.dumps({"path": str(loaded.path), "version": loaded.version}))
    """
)


def test_processes_fetching_one_version_at_once_all_load_it(  # type: ignore[no-untyped-def]
    trained, session_home: Path, tmp_path: Path
) -> None:
    """`serve --workers N` with a shadow, or several servers on one machine, fetch the
    same version into one cache at once: each must load it (found failing: one process
    removed the folder another had just moved in, or both wrote one temporary file)."""
    store = f"sqlite:///{session_home / 'mlflow.db'}"
    for round_ in range(3):
        home, go = tmp_path / f"home{round_}", tmp_path / f"go{round_}"
        env = {**os.environ, "MODELYARD_HOME": str(home), "MLFLOW_TRACKING_URI": store}
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", RACE_PROBE, f"{NAME}@candidate", str(go), str(n)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for n in range(6)
        ]
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("ready-*"))) < 6 * (round_ + 1):
            assert time.monotonic() < deadline, "the probes did not start"
            time.sleep(0.05)
        go.touch()
        results = [process.communicate(timeout=120) for process in processes]
        failed = [
            err[-2000:] for (_, err), p in zip(results, processes, strict=True) if p.returncode
        ]
        assert not failed, failed
        loaded = {json.loads(out)["path"] for out, _ in results}
        assert len(loaded) == 1
        folder = Path(loaded.pop())
        assert bundle.read_bundle(folder).manifest["files"]
        # no half-fetched or discarded copies left behind; the alias recorded once
        assert sorted(
            p.name for p in folder.parent.iterdir() if p.name != ".aliases.json.lock"
        ) == ["1", "aliases.json"]
        assert (
            json.loads((folder.parent / "aliases.json").read_text())["candidate"]["version"] == "1"
        )
