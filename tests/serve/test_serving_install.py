"""A serving-only install (``pip install modelyard[serve]``) has no torch and no MLflow,
and still serves, from a bundle folder and from a registry alias."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.helpers import building_the_checkout

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_serve_extra_installs_and_serves_without_torch(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    with building_the_checkout():
        subprocess.run([*pip, f"{ROOT}[serve]"], check=True, timeout=900)
    python = str(venv / "bin" / "python")
    for heavy in ("torch", "mlflow", "pandas", "scipy", "sklearn", "matplotlib"):
        probe = subprocess.run([python, "-c", f"import {heavy}"], capture_output=True, text=True)
        assert probe.returncode != 0 and f"No module named '{heavy}'" in probe.stderr, heavy
    # A command that needs an extra says which one, in one line.
    missing = subprocess.run(
        [str(venv / "bin" / "modelyard"), "train", "task=digits"], capture_output=True, text=True
    )
    assert missing.returncode == 2, missing.stderr
    assert "pip install 'modelyard[train]'" in missing.stderr or (
        "pip install 'modelyard[tracking]'" in missing.stderr
    ), missing.stderr
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(trained.bundle_path, bundle_dir)
    assert _serves(venv, str(bundle_dir), tmp_path) == "local"
    # The embedded registry (SQLite) is read without MLflow.
    assert _serves(venv, "digits-cnn@candidate", tmp_path) == str(trained.model_version)


def _serves(venv: Path, model: str, tmp_path: Path) -> str:
    """Start the venv's server on ``model``, predict once, stop it; the served version."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [str(venv / "bin" / "modelyard"), "serve", model, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        response = httpx.post(
            f"{url}/v1/models/digits-cnn:predict",
            json={"instances": [[[0] * 8] * 8]},
            timeout=10,
        )
        assert response.status_code == 200, (tmp_path / "server.log").read_text()
        return str(response.json()["model_version"])
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
